package nameserver

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// The fast path answers the common UDP query (one question, class IN, at
// most an EDNS0 OPT) straight from wire bytes, with answer and authority
// sections packed when the snapshot was built. Anything else goes to
// ServeDNS, which the fast path must match answer for answer: the sections
// are produced by view.answer itself, and the tests compare both paths.

// fastEntry is one pre-packed answer: the answer and authority sections,
// uncompressed so they do not depend on where they land in the message.
type fastEntry struct {
	qtype  uint16
	rcode  uint8
	an, ns uint16
	body   []byte
}

// fastNode holds the answers for one name; other, when set, answers every
// qtype not listed (NODATA at a name without a CNAME).
type fastNode struct {
	entries  []fastEntry
	other    fastEntry
	hasOther bool
}

// fastZone is a zone apex in wire form with its negative answer.
type fastZone struct {
	wire string     // lower-case wire name
	nx   *fastEntry // NXDOMAIN: SOA in the authority section
}

// buildFast packs the answers of every name the fast path can parse.
func (v *view) buildFast() {
	v.fast = make(map[string]*fastNode, len(v.nodes))
	v.fastZones = make([]fastZone, 0, len(v.zones))
	for _, z := range v.zones {
		w, ok := fastWire(z.apex)
		if !ok {
			continue // such a zone is only answered by the full handler
		}
		e := packEntry(0, dns.RcodeNameError, nil, []dns.RR{z.soa})
		v.fastZones = append(v.fastZones, fastZone{wire: w, nx: &e})
	}
	// The apex test in view.answer compares names, so zones whose wire form
	// failed above must also keep their names off the fast path.
	for name, n := range v.nodes {
		if n.zone == nil {
			continue
		}
		if _, ok := fastWire(n.zone.apex); !ok {
			continue
		}
		w, ok := fastWire(name)
		if !ok {
			continue
		}
		fn := &fastNode{}
		var types []uint16
		if len(n.rrsets[dns.TypeCNAME]) > 0 {
			// At a CNAME the answer depends on the target: pre-pack the
			// usual qtypes and leave the others to the full handler.
			types = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeMX}
		} else {
			for t := range n.rrsets {
				types = append(types, t)
			}
			if name == n.zone.apex {
				types = append(types, dns.TypeSOA)
			}
			// Any qtype absent here (but ANY, which goes to the handler)
			// gets the same answer; TypeReserved is never stored.
			fn.other = v.entry(name, dns.TypeReserved)
			fn.hasOther = true
		}
		slices.Sort(types)
		for _, t := range slices.Compact(types) {
			fn.entries = append(fn.entries, v.entry(name, t))
		}
		v.fast[w] = fn
	}
}

func (v *view) entry(name string, qtype uint16) fastEntry {
	resp := new(dns.Msg)
	rcode := v.answer(resp, name, qtype, false)
	return packEntry(qtype, rcode, resp.Answer, resp.Ns)
}

func packEntry(qtype uint16, rcode int, an, ns []dns.RR) fastEntry {
	m := &dns.Msg{Answer: an, Ns: ns}
	b, err := m.Pack()
	if err != nil || len(b) < 12 {
		// Cannot happen for records we built; an empty entry would be wrong,
		// so mark it unusable by an impossible rcode.
		return fastEntry{qtype: qtype, rcode: 0xff}
	}
	return fastEntry{qtype: qtype, rcode: uint8(rcode), an: uint16(len(an)), ns: uint16(len(ns)), body: b[12:]}
}

// fastWire is name in lower-case wire form, ok only when every label is
// letters, digits, '-' or '_' (so presentation and wire forms match byte
// for byte, with no escapes).
func fastWire(name string) (string, bool) {
	if name == "" || name == "." || name[len(name)-1] != '.' {
		return "", false
	}
	out := make([]byte, 0, len(name)+1)
	start := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '.' {
			l := i - start
			if l == 0 || l > 63 {
				return "", false
			}
			out = append(out, byte(l))
			out = append(out, name[start:i]...)
			start = i + 1
			continue
		}
		if !fastChar(c) || c >= 'A' && c <= 'Z' {
			return "", false
		}
	}
	out = append(out, 0)
	if len(out) > 255 {
		return "", false
	}
	return string(out), true
}

func fastChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

const (
	ednsCookie  = 10
	ednsPadding = 12
	maxLabels   = 128
)

// answerUDP appends to out the reply to query q from src when the fast path
// can give it; ok false means: hand the query to ServeDNS. ok with nothing
// appended means the rate limit dropped the answer: send nothing.
func (s *Server) answerUDP(out, q []byte, src netip.Addr) ([]byte, bool) {
	if len(q) < 17 || q[2]&0xf8 != 0 { // QR set or opcode other than QUERY
		return out, false
	}
	be := binary.BigEndian
	if be.Uint16(q[4:]) != 1 || be.Uint16(q[6:]) != 0 || be.Uint16(q[8:]) != 0 || be.Uint16(q[10:]) > 1 {
		return out, false
	}
	// The name: plain labels only, lower-cased into key.
	var key [256]byte
	var labels [maxLabels]uint8 // offsets of each label in key
	nl, off, kn := 0, 12, 0
	for {
		if off >= len(q) {
			return out, false
		}
		l := int(q[off])
		if l == 0 {
			break
		}
		if l > 63 || off+1+l > len(q) || kn+1+l+1 > 255 || nl == maxLabels {
			return out, false
		}
		labels[nl] = uint8(kn)
		nl++
		key[kn] = byte(l)
		kn++
		for _, c := range q[off+1 : off+1+l] {
			if !fastChar(c) {
				return out, false
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			key[kn] = c
			kn++
		}
		off += 1 + l
	}
	if nl == 0 {
		return out, false
	}
	key[kn] = 0
	kn++
	off++
	if off+4 > len(q) {
		return out, false
	}
	qtype, qclass := be.Uint16(q[off:]), be.Uint16(q[off+2:])
	qend := off + 4
	if qclass != dns.ClassINET || qtype == dns.TypeANY || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		return out, false
	}
	size := dns.MinMsgSize
	edns, do := false, false
	if be.Uint16(q[10:]) == 1 {
		// EDNS0 OPT: root owner, version 0, only options we ignore anyway.
		o := qend
		if o+11 > len(q) || q[o] != 0 || be.Uint16(q[o+1:]) != dns.TypeOPT || q[o+5] != 0 || q[o+6] != 0 {
			return out, false
		}
		rdlen := int(be.Uint16(q[o+9:]))
		if o+11+rdlen != len(q) {
			return out, false
		}
		for p := o + 11; p < len(q); {
			if p+4 > len(q) {
				return out, false
			}
			code, l := be.Uint16(q[p:]), int(be.Uint16(q[p+2:]))
			if code != ednsCookie && code != ednsPadding || p+4+l > len(q) {
				return out, false
			}
			p += 4 + l
		}
		edns, do = true, q[o+7]&0x80 != 0
		size = min(max(int(be.Uint16(q[o+3:])), dns.MinMsgSize), int(s.cfg.UDPSize))
	} else if qend != len(q) {
		return out, false
	}
	snap := s.snap.Load()
	if snap == nil {
		return out, false
	}
	lan := s.isLAN(src)
	v := snap.wan
	if lan {
		v = snap.lan
	}
	rd := q[2]&0x01 != 0
	var z *fastZone
	for i := range v.fastZones {
		w := v.fastZones[i].wire
		for _, lo := range labels[:nl] {
			if kn-int(lo) == len(w) && string(key[lo:kn]) == w {
				z = &v.fastZones[i]
				break
			}
		}
		if z != nil {
			break
		}
	}
	var e *fastEntry
	aa, ra := true, lan && s.cfg.Recursion
	if z == nil {
		if len(v.fastZones) != len(v.zones) || lan && s.cfg.Recursion && rd {
			return out, false
		}
		e, aa, ra = &fastEntry{rcode: dns.RcodeRefused}, false, false
	} else if n := v.fast[string(key[:kn])]; n == nil {
		e = z.nx
	} else {
		for i := range n.entries {
			if n.entries[i].qtype == qtype {
				e = &n.entries[i]
				break
			}
		}
		if e == nil {
			if !n.hasOther {
				return out, false
			}
			e = &n.other
		}
	}
	if e.rcode > 15 {
		return out, false
	}
	total := qend + len(e.body)
	if edns {
		total += 11
	}
	if total > size {
		return out, false // the handler truncates
	}
	slip := false
	if s.rrl != nil && !lan && !s.rrl.exempts(src) {
		// The same buckets as ServeDNS's (see rateLimit there).
		cost := answerCost(len(q), total)
		var v verdict
		switch {
		case z != nil && e.rcode == dns.RcodeSuccess:
			v = s.rrl.check(src, rrlAnswer, qtype, key[:kn], cost)
		case z != nil && e.rcode == dns.RcodeNameError:
			v = s.rrl.check(src, rrlNXDomain, 0, []byte(z.wire), cost)
		default:
			v = s.rrl.check(src, rrlError, 0, nil, cost)
		}
		if v == rrlDrop {
			return out, true
		}
		slip = v == rrlSlip
	}
	an, ns := e.an, e.ns
	if slip {
		an, ns = 0, 0
	}
	start := len(out)
	out = append(out, q[0], q[1], 0x80|q[2]&0x01, q[3]&0x10|e.rcode)
	if aa {
		out[start+2] |= 0x04
	}
	if slip {
		out[start+2] |= 0x02 // TC: ask again over TCP
	}
	if ra {
		out[start+3] |= 0x80
	}
	ar := uint16(0)
	if edns {
		ar = 1
	}
	out = be.AppendUint16(out, 1)
	out = be.AppendUint16(out, an)
	out = be.AppendUint16(out, ns)
	out = be.AppendUint16(out, ar)
	out = append(out, q[12:qend]...)
	if !slip {
		out = append(out, e.body...)
	}
	if edns {
		var flags byte
		if do {
			flags = 0x80
		}
		out = append(out, 0, 0, byte(dns.TypeOPT), byte(s.cfg.UDPSize>>8), byte(s.cfg.UDPSize), 0, 0, flags, 0, 0, 0)
	}
	return out, true
}
