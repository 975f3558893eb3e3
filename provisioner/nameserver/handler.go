package nameserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxChain bounds CNAME chains followed inside our own zones.
const maxChain = 8

// ServeDNS answers one message and writes the reply; rcode is what was sent.
func (s *Server) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if r == nil || r.Response {
		return dns.RcodeSuccess, nil // never answer answers
	}
	src, tcp := remote(w)
	limit := !tcp && s.rrl != nil && !s.isLAN(src) && !s.rrl.exempts(src)
	resp := new(dns.Msg)
	resp.SetReply(r)
	resp.RecursionDesired = r.RecursionDesired

	size := uint16(dns.MinMsgSize)
	opt := r.IsEdns0()
	if opt != nil {
		size = min(max(opt.UDPSize(), dns.MinMsgSize), s.cfg.UDPSize)
	}
	// Set once known, for the rate limit's buckets.
	var (
		qname string
		qtype uint16
		z     *zone
	)
	reply := func(rcode int) (int, error) {
		resp.Rcode = rcode
		if opt != nil {
			resp.SetEdns0(s.cfg.UDPSize, opt.Do())
		}
		if !tcp {
			resp.Truncate(int(size))
		}
		if limit {
			switch s.rateLimit(src, r, resp, qname, qtype, z) {
			case rrlDrop:
				return rcode, nil
			case rrlSlip:
				resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
				if opt != nil {
					resp.SetEdns0(s.cfg.UDPSize, opt.Do())
				}
				resp.Truncated = true
			}
		}
		if err := w.WriteMsg(resp); err != nil {
			return rcode, fmt.Errorf("write answer: %w", err)
		}
		return rcode, nil
	}

	if opt != nil && opt.Version() != 0 {
		resp.Question = nil
		return reply(dns.RcodeBadVers)
	}
	switch r.Opcode {
	case dns.OpcodeQuery:
	case dns.OpcodeNotify:
		// We are the primary; nobody notifies us.
		return reply(dns.RcodeRefused)
	default:
		return reply(dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 || len(r.Answer) > 0 || len(r.Ns) > 0 {
		return reply(dns.RcodeFormatError)
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return reply(dns.RcodeRefused)
	}
	snap := s.snap.Load()
	if snap == nil {
		return reply(dns.RcodeServerFailure)
	}
	lan := s.isLAN(src)
	v := snap.wan
	if lan {
		v = snap.lan
	}
	qname, qtype = strings.ToLower(q.Name), q.Qtype
	z = v.zoneOf(qname)

	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		switch {
		case z == nil || !tcp || !s.isSecondary(src):
			return reply(dns.RcodeRefused)
		case qname != z.apex:
			return reply(dns.RcodeNotAuth)
		}
		return s.transfer(w, r, z)
	}
	if z == nil {
		if lan && s.cfg.Recursion && r.RecursionDesired {
			return s.forward(ctx, w, r, tcp, size)
		}
		return reply(dns.RcodeRefused)
	}
	if lan && s.cfg.Recursion {
		resp.RecursionAvailable = true
	}
	resp.Authoritative = true
	return reply(v.answer(resp, qname, q.Qtype, !tcp))
}

// rateLimit puts a UDP answer to a WAN source through the limiter, in the
// bucket answerUDP uses for the same answer.
func (s *Server) rateLimit(src netip.Addr, r, resp *dns.Msg, qname string, qtype uint16, z *zone) verdict {
	cost := answerCost(r.Len(), resp.Len())
	switch {
	case z != nil && resp.Rcode == dns.RcodeSuccess:
		var b [256]byte
		n, err := dns.PackDomainName(qname, b[:], 0, nil, false)
		if err != nil {
			break
		}
		return s.rrl.check(src, rrlAnswer, qtype, b[:n], cost)
	case z != nil && resp.Rcode == dns.RcodeNameError:
		return s.rrl.check(src, rrlNXDomain, 0, []byte(z.wire), cost)
	}
	return s.rrl.check(src, rrlError, 0, nil, cost)
}

// answer fills resp for qname in our zones, following CNAMEs that stay
// inside them, and returns the rcode of the last name looked up. With
// minimalANY, ANY gets one RRset (RFC 8482): over UDP a full set would make
// us an amplifier.
func (v *view) answer(resp *dns.Msg, qname string, qtype uint16, minimalANY bool) int {
	name := qname
	for range maxChain {
		z := v.zoneOf(name)
		if z == nil {
			return dns.RcodeSuccess // the chain leaves our zones; the resolver goes on
		}
		n := v.nodes[name]
		if n == nil {
			resp.Ns = append(resp.Ns, z.soa)
			return dns.RcodeNameError
		}
		if qtype == dns.TypeSOA && name == z.apex {
			resp.Answer = append(resp.Answer, z.soa)
			return dns.RcodeSuccess
		}
		if qtype == dns.TypeANY {
			before := len(resp.Answer)
			switch {
			case name == z.apex:
				resp.Answer = append(resp.Answer, z.soa)
				if minimalANY {
					break
				}
				for _, rrs := range n.rrsets {
					resp.Answer = append(resp.Answer, rrs...)
				}
			case minimalANY:
				// The RRset of the lowest type, so the choice is stable.
				first := uint16(0)
				for t, rrs := range n.rrsets {
					if len(rrs) > 0 && (first == 0 || t < first) {
						first = t
					}
				}
				resp.Answer = append(resp.Answer, n.rrsets[first]...)
			default:
				for _, rrs := range n.rrsets {
					resp.Answer = append(resp.Answer, rrs...)
				}
			}
			if len(resp.Answer) == before {
				resp.Ns = append(resp.Ns, z.soa)
			}
			return dns.RcodeSuccess
		}
		if rrs := n.rrsets[qtype]; len(rrs) > 0 {
			resp.Answer = append(resp.Answer, rrs...)
			return dns.RcodeSuccess
		}
		c := n.rrsets[dns.TypeCNAME]
		if len(c) == 0 {
			resp.Ns = append(resp.Ns, z.soa) // NODATA
			return dns.RcodeSuccess
		}
		resp.Answer = append(resp.Answer, c[0])
		name = c[0].(*dns.CNAME).Target
	}
	return dns.RcodeSuccess
}

// transfer sends the zone over TCP: SOA, records, SOA (RFC 5936). IXFR is
// answered with the full zone, which RFC 1995 allows.
func (s *Server) transfer(w dns.ResponseWriter, r *dns.Msg, z *zone) (int, error) {
	ch := make(chan *dns.Envelope)
	tr := new(dns.Transfer)
	var wg sync.WaitGroup
	var outErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		outErr = tr.Out(w, r, ch)
	}()
	const chunk = 100 // keeps every message far below 64 KiB
	batch := []dns.RR{z.soa}
	for _, rr := range z.rrs {
		batch = append(batch, rr)
		if len(batch) == chunk {
			ch <- &dns.Envelope{RR: batch}
			batch = nil
		}
	}
	ch <- &dns.Envelope{RR: append(batch, z.soa)}
	close(ch)
	wg.Wait()
	if outErr != nil {
		return dns.RcodeServerFailure, fmt.Errorf("zone transfer of %s: %w", z.apex, outErr)
	}
	return dns.RcodeSuccess, nil
}

// forward asks the upstreams in turn, over the transport the client used.
func (s *Server) forward(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, tcp bool, size uint16) (int, error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: s.cfg.UDPSize}
	if tcp {
		c.Net = "tcp"
	}
	var errs []error
	for _, up := range s.cfg.Upstreams {
		resp, _, err := c.ExchangeContext(ctx, r, up)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp.Id = r.Id
		if !tcp {
			resp.Truncate(int(size))
		}
		if err := w.WriteMsg(resp); err != nil {
			return resp.Rcode, fmt.Errorf("write forwarded answer: %w", err)
		}
		return resp.Rcode, nil
	}
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	if err := w.WriteMsg(m); err != nil {
		errs = append(errs, err)
	}
	return dns.RcodeServerFailure, fmt.Errorf("forward %s: %w", r.Question[0].Name, errors.Join(errs...))
}
