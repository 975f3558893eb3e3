// Package nameserver is the region's authoritative DNS server: VM names
// under each tenant's subzone, staff-only machine names, tenants' own
// records, reverse zones for the
// LAN subnets, split horizon between LAN and WAN, zone transfers to the
// ISP's secondaries, optional forwarding for LAN clients, and
// response-rate limiting of UDP answers to the WAN (rrl.go). Queries are
// answered from an immutable in-memory snapshot that is swapped atomically;
// they never wait on the database.
package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
)

// Config is validated once by New.
type Config struct {
	Zone string   // region zone, e.g. cloud.internal.
	NS   []string // name servers of the zone, e.g. ns1.cloud.internal.
	TTL  uint32   // of VM, SOA and NS records, and of negative answers; default 300
	// WANAddress is the ISP's public address, answered to WAN clients for
	// VM names (the forwarder sits behind it).
	WANAddress netip.Addr
	// LANNetworks are the source networks that see private answers, the
	// reverse zones, and may ask for recursion.
	LANNetworks  []netip.Prefix
	SecondaryACL []netip.Prefix // may AXFR
	Notify       []string       // host:port of secondaries told about new serials
	Recursion    bool           // forward LAN clients' other questions to Upstreams
	Upstreams    []string       // host:port
	// UDPSize is the largest UDP answer we send and advertise; default 1232
	// (the DNS flag day 2020 value, safe from IP fragmentation).
	UDPSize uint16
	// Refresh is how often the snapshot is reloaded; default 2 s.
	Refresh time.Duration
	// RRL limits the rate of UDP answers to sources outside LANNetworks
	// so the server cannot be used to reflect floods at forged addresses;
	// off unless RRL.Rate is set.
	RRL RateLimit
}

// Source yields the full zone content with its serial.
type Source interface {
	Snapshot(ctx context.Context) (Zone, error)
}

// Zone is the content published under one serial. Names are relative to
// the region zone ("web.acme" for VM web of tenant acme).
type Zone struct {
	Serial   uint32
	Hosts    []Host
	Records  []Record
	Networks []netip.Prefix // LAN subnets; reverse zones are derived from them
}

// Host is a VM or machine name with its private address.
type Host struct {
	Name string
	Addr netip.Addr
	// Internal hosts (bare-metal machines) exist only in the LAN view: WAN
	// clients get NXDOMAIN for them and for the names above them.
	Internal bool
	// PTR is the name the address's PTR record points at, relative to the
	// region zone like Name; empty means Name. It is published only while
	// it resolves to Addr in the zone itself (forward-confirmed), else the
	// PTR points at Name.
	PTR string
}

// Record is a tenant's own record.
type Record struct {
	Name     string
	Type     string // A, AAAA, CNAME, TXT, MX
	Value    string
	TTL      uint32
	Priority uint16
}

// Server answers queries from the latest snapshot of its Source.
type Server struct {
	cfg  Config
	src  Source
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	rrl  *limiter // nil when off
}

// New validates cfg and returns a server that has not loaded anything yet.
func New(cfg Config, src Source, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Zone = dns.CanonicalName(cfg.Zone)
	if cfg.Zone == "." || !validName(cfg.Zone) {
		return nil, fmt.Errorf("dns zone %q is not a domain name", cfg.Zone)
	}
	if len(cfg.NS) == 0 {
		return nil, errors.New("dns zone needs at least one NS name")
	}
	for i, ns := range cfg.NS {
		cfg.NS[i] = dns.CanonicalName(ns)
		if !validName(cfg.NS[i]) {
			return nil, fmt.Errorf("dns NS %q is not a domain name", ns)
		}
	}
	if cfg.TTL == 0 {
		cfg.TTL = 300
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = 1232
	}
	cfg.UDPSize = max(cfg.UDPSize, dns.MinMsgSize)
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	for _, list := range [][]string{cfg.Notify, cfg.Upstreams} {
		for i, a := range list {
			if _, _, err := net.SplitHostPort(a); err != nil {
				list[i] = net.JoinHostPort(a, "53")
			}
		}
	}
	if cfg.Recursion && len(cfg.Upstreams) == 0 {
		return nil, errors.New("dns recursion needs at least one upstream")
	}
	if err := cfg.RRL.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, src: src, log: log}
	if cfg.RRL.Rate > 0 {
		s.rrl = newLimiter(cfg.RRL, log)
	}
	return s, nil
}

func validName(s string) bool {
	_, ok := dns.IsDomainName(s)
	return ok && len(s) <= 254
}

// Refresh loads the source once and swaps in a new snapshot when the serial
// changed, then notifies the secondaries. Serve calls it on a timer.
func (s *Server) Refresh(ctx context.Context) error {
	z, err := s.src.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("load dns zone: %w", err)
	}
	old := s.snap.Load()
	if old != nil && old.serial == z.Serial {
		return nil
	}
	snap := build(s.cfg, z, s.log)
	s.snap.Store(snap)
	s.log.InfoContext(ctx, "dns zone loaded", "serial", z.Serial, "hosts", len(z.Hosts), "records", len(z.Records))
	for _, target := range s.cfg.Notify {
		go s.notify(ctx, snap, target)
	}
	return nil
}

// Serial is the serial of the snapshot being served, 0 before the first load.
func (s *Server) Serial() uint32 {
	if snap := s.snap.Load(); snap != nil {
		return snap.serial
	}
	return 0
}

// Listen binds UDP and TCP on the same address; port 0 picks one free for both.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns listen address: %w", err)
	}
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns listen: %w", err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		if port != "0" {
			return nil, nil, fmt.Errorf("dns listen: %w", err)
		}
	}
	return nil, nil, errors.New("dns listen: no port free for both UDP and TCP")
}

// Serve answers on pc (UDP) and ln (TCP), either may be nil, and reloads
// the snapshot until ctx ends. Common UDP queries are answered from
// pre-packed replies without leaving the read loop (see answerUDP).
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	if err := s.Refresh(ctx); err != nil {
		// Keep serving (SERVFAIL) and retry; the database may come back.
		s.log.ErrorContext(ctx, "dns zone not loaded", "err", err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if _, err := s.ServeDNS(ctx, w, r); err != nil {
			s.log.DebugContext(ctx, "dns answer", "client", w.RemoteAddr().String(), "err", err)
		}
	})
	g, gctx := errgroup.WithContext(ctx)
	var servers []*dns.Server
	if pc != nil {
		servers = append(servers, s.udpServer(ctx, pc, h))
	}
	if ln != nil {
		servers = append(servers, &dns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second,
			WriteTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }})
	}
	// A server told to shut down before it has started would refuse and
	// then serve for ever: shutdown waits until each one is up or gone.
	started := make([]chan struct{}, len(servers))
	exited := make([]chan struct{}, len(servers))
	for i, srv := range servers {
		started[i], exited[i] = make(chan struct{}), make(chan struct{})
		srv.NotifyStartedFunc = sync.OnceFunc(func() { close(started[i]) })
		g.Go(func() error {
			defer close(exited[i])
			if err := srv.ActivateAndServe(); err != nil && gctx.Err() == nil {
				return fmt.Errorf("dns serve: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		// While the database is out the zones read last stay in force.
		refreshes := &backoff.Loop{Base: s.cfg.Refresh, What: "dns zone refresh", Log: s.log}
		t := time.NewTimer(s.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				for i, srv := range servers {
					select {
					case <-started[i]:
						_ = srv.ShutdownContext(sctx)
					case <-exited[i]:
					}
				}
				return nil
			case <-t.C:
				err := s.Refresh(gctx)
				if gctx.Err() == nil {
					t.Reset(refreshes.Next(gctx, err))
				}
			}
		}
	})
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// notify tells one secondary the new serial of each zone it may see, a few
// times until it acknowledges (RFC 1996).
func (s *Server) notify(ctx context.Context, snap *snapshot, target string) {
	v := snap.wan
	if host, _, err := net.SplitHostPort(target); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && s.isLAN(a) {
			v = snap.lan
		}
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, z := range v.zones {
		m := new(dns.Msg)
		m.SetNotify(z.apex)
		m.Answer = []dns.RR{z.soa}
		for attempt := range 4 {
			resp, _, err := c.ExchangeContext(ctx, m, target)
			if err == nil && resp.Rcode == dns.RcodeSuccess {
				s.log.DebugContext(ctx, "dns notify acknowledged", "target", target, "zone", z.apex, "serial", snap.serial)
				break
			}
			if attempt == 3 {
				s.log.WarnContext(ctx, "dns notify unanswered", "target", target, "zone", z.apex, "err", err)
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt+1) * time.Second):
			}
		}
	}
}

func (s *Server) isLAN(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.LANNetworks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) isSecondary(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.SecondaryACL {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func remote(w dns.ResponseWriter) (netip.Addr, bool) {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), false
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), true
	}
	return netip.Addr{}, strings.HasPrefix(w.RemoteAddr().Network(), "tcp")
}
