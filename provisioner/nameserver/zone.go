package nameserver

import (
	"cmp"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// snapshot is immutable once built; queries share it without locks.
type snapshot struct {
	serial uint32
	lan    *view
	wan    *view
}

// view is what one side of the split horizon sees.
type view struct {
	zones []*zone // longest apex first
	nodes map[string]*node
	// For answerUDP: pre-packed answers by lower-case wire name, and the
	// zones whose apex it can match.
	fast      map[string]*fastNode
	fastZones []fastZone
}

type zone struct {
	apex string
	wire string // apex in lower-case wire form, for rate-limit buckets
	soa  *dns.SOA
	ns   []dns.RR
	rrs  []dns.RR // everything but the SOA, in transfer order
}

type node struct {
	zone   *zone
	rrsets map[uint16][]dns.RR // empty for names that only have names below them
}

func build(cfg Config, z Zone, log *slog.Logger) *snapshot {
	snap := &snapshot{serial: z.Serial, lan: buildView(cfg, z, true, log), wan: buildView(cfg, z, false, log)}
	snap.lan.buildFast()
	snap.wan.buildFast()
	return snap
}

func buildView(cfg Config, z Zone, lan bool, log *slog.Logger) *view {
	v := &view{nodes: make(map[string]*node, 2*(len(z.Hosts)+len(z.Records))+8)}
	v.zones = append(v.zones, newZone(cfg, cfg.Zone, z.Serial))
	if lan {
		for _, apex := range reverseZones(z.Networks) {
			v.zones = append(v.zones, newZone(cfg, apex, z.Serial))
		}
	}
	slices.SortFunc(v.zones, func(a, b *zone) int { return cmp.Compare(len(b.apex), len(a.apex)) })
	for _, zn := range v.zones {
		v.node(zn.apex).rrsets[dns.TypeNS] = zn.ns
	}

	// The names our NS and SOA records point at answer only from our
	// configuration: a tenant record or VM there, or below, would take
	// over the zone's own name servers.
	var guarded []string
	for _, n := range append([]string{cfg.NS[0]}, cfg.NS...) {
		if v.zoneOf(n) != nil && n != cfg.Zone {
			guarded = append(guarded, n)
		}
	}
	isGuarded := func(name string) bool {
		for _, g := range guarded {
			if name == g || strings.HasSuffix(name, "."+g) {
				return true
			}
		}
		return false
	}

	skipped, guardedSkips := 0, 0
	hdr := func(name string, t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	addr := func(name string, a netip.Addr, ttl uint32) {
		if a.Is4() {
			v.add(&dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: net.IP(a.AsSlice())})
		} else if a.IsValid() {
			v.add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: net.IP(a.AsSlice())})
		}
	}
	hosts := map[string]bool{}
	// PTRs are added once every address record is in, so a chosen name
	// can be checked against what the view answers for it.
	type ptr struct {
		rev, name, chosen string
		addr              netip.Addr
	}
	var ptrs []ptr
	for _, h := range z.Hosts {
		if h.Internal && !lan {
			// Not even an empty name above it: the WAN must not learn
			// the machines' subzone exists.
			continue
		}
		name := v.fqdn(cfg.Zone, h.Name)
		if name == "" || !h.Addr.IsValid() {
			skipped++
			continue
		}
		if isGuarded(name) {
			guardedSkips++
			continue
		}
		hosts[name] = true
		if !lan {
			addr(name, cfg.WANAddress, cfg.TTL)
			continue
		}
		addr(name, h.Addr.Unmap(), cfg.TTL)
		if inAny(z.Networks, h.Addr.Unmap()) {
			rev, err := dns.ReverseAddr(h.Addr.Unmap().String())
			if err == nil {
				ptrs = append(ptrs, ptr{rev: rev, name: name, chosen: h.PTR, addr: h.Addr.Unmap()})
			}
		}
	}
	for _, r := range z.Records {
		name := v.fqdn(cfg.Zone, r.Name)
		if name != "" && isGuarded(name) {
			guardedSkips++
			continue
		}
		ttl := r.TTL
		if ttl == 0 {
			ttl = cfg.TTL
		}
		var rr dns.RR
		switch r.Type {
		case "A", "AAAA":
			a, err := netip.ParseAddr(r.Value)
			if name == "" || err != nil || a.Is4() != (r.Type == "A") || store.UnroutableAddr(a) != "" {
				skipped++
				continue
			}
			addr(name, a, ttl)
			continue
		case "CNAME":
			// A VM's own name wins over a CNAME created before it.
			if hosts[name] {
				skipped++
				continue
			}
			rr = &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, ttl), Target: dns.CanonicalName(r.Value)}
		case "MX":
			rr = &dns.MX{Hdr: hdr(name, dns.TypeMX, ttl), Preference: r.Priority, Mx: dns.CanonicalName(r.Value)}
		case "TXT":
			rr = &dns.TXT{Hdr: hdr(name, dns.TypeTXT, ttl), Txt: splitTXT(r.Value)}
		}
		if rr == nil || name == "" {
			skipped++
			continue
		}
		v.add(rr)
	}
	// A CNAME must stand alone at its name (RFC 1034 §3.6.2).
	for name, n := range v.nodes {
		if len(n.rrsets[dns.TypeCNAME]) > 0 && len(n.rrsets) > 1 {
			delete(n.rrsets, dns.TypeCNAME)
			skipped++
			log.Warn("dns: dropped a CNAME beside other records", "name", name)
		}
		if c := n.rrsets[dns.TypeCNAME]; len(c) > 1 {
			n.rrsets[dns.TypeCNAME] = c[:1]
		}
	}
	unconfirmed := 0
	for _, p := range ptrs {
		target := p.name
		if p.chosen != "" {
			if c := v.fqdn(cfg.Zone, p.chosen); c != "" && v.resolvesTo(c, p.addr) {
				target = c
			} else {
				unconfirmed++
			}
		}
		v.add(&dns.PTR{Hdr: hdr(p.rev, dns.TypePTR, cfg.TTL), Ptr: target})
	}
	if skipped > 0 {
		log.Warn("dns: skipped records that cannot be published", "count", skipped, "lan", lan)
	}
	if unconfirmed > 0 {
		log.Warn("dns: chosen PTR names that do not resolve to their address answer the host's own name", "count", unconfirmed)
	}
	if guardedSkips > 0 {
		log.Warn("dns: ignored tenant records at the zone's own name-server names", "count", guardedSkips, "names", guarded, "lan", lan)
	}
	v.fillTransfer()
	return v
}

func newZone(cfg Config, apex string, serial uint32) *zone {
	z := &zone{apex: apex, wire: wireName(apex)}
	z.soa = &dns.SOA{
		Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: cfg.TTL},
		Ns:  cfg.NS[0], Mbox: "hostmaster." + cfg.Zone,
		Serial: serial, Refresh: 3600, Retry: 600, Expire: 1209600, Minttl: cfg.TTL,
	}
	for _, ns := range cfg.NS {
		z.ns = append(z.ns, &dns.NS{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: cfg.TTL}, Ns: ns})
	}
	return z
}

// wireName is name (lower-case already) in uncompressed wire form, or ""
// when it does not pack.
func wireName(name string) string {
	var b [256]byte
	n, err := dns.PackDomainName(name, b[:], 0, nil, false)
	if err != nil {
		return ""
	}
	return string(b[:n])
}

// fqdn makes a relative name absolute under apex, or "" when it is not a
// valid name.
func (v *view) fqdn(apex, rel string) string {
	rel = strings.ToLower(strings.TrimSuffix(rel, "."))
	name := apex
	if rel != "" && rel != "@" {
		name = rel + "." + apex
	}
	if !validName(name) {
		return ""
	}
	return name
}

// resolvesTo tells whether name has an address record for a in the view
// (the check forward-confirmed reverse DNS makes: no CNAMEs followed).
func (v *view) resolvesTo(name string, a netip.Addr) bool {
	n := v.nodes[name]
	if n == nil {
		return false
	}
	t := dns.TypeA
	if a.Is6() {
		t = dns.TypeAAAA
	}
	for _, rr := range n.rrsets[t] {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		}
		if got, ok := netip.AddrFromSlice(ip); ok && got.Unmap() == a {
			return true
		}
	}
	return false
}

// zoneOf returns the zone name lies in, or nil.
func (v *view) zoneOf(name string) *zone {
	for _, z := range v.zones {
		if name == z.apex || (len(name) > len(z.apex) && name[len(name)-len(z.apex)-1] == '.' && strings.HasSuffix(name, z.apex)) {
			return z
		}
	}
	return nil
}

// node returns the node for name, creating it and the empty names between
// it and its zone's apex.
func (v *view) node(name string) *node {
	if n, ok := v.nodes[name]; ok {
		return n
	}
	z := v.zoneOf(name)
	n := &node{zone: z, rrsets: map[uint16][]dns.RR{}}
	v.nodes[name] = n
	if z != nil && name != z.apex {
		if i := strings.IndexByte(name, '.'); i >= 0 {
			v.node(name[i+1:])
		}
	}
	return n
}

func (v *view) add(rr dns.RR) {
	h := rr.Header()
	if v.zoneOf(h.Name) == nil {
		return
	}
	n := v.node(h.Name)
	for _, old := range n.rrsets[h.Rrtype] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	n.rrsets[h.Rrtype] = append(n.rrsets[h.Rrtype], rr)
}

// fillTransfer lists each zone's records in a stable order for AXFR and
// zone files: apex first, then names sorted.
func (v *view) fillTransfer() {
	names := make([]string, 0, len(v.nodes))
	for name := range v.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, z := range v.zones {
		z.rrs = append(z.rrs[:0], z.ns...)
	}
	for _, name := range names {
		n := v.nodes[name]
		if n.zone == nil {
			continue
		}
		types := make([]uint16, 0, len(n.rrsets))
		for t := range n.rrsets {
			if !(name == n.zone.apex && t == dns.TypeNS) {
				types = append(types, t)
			}
		}
		slices.Sort(types)
		for _, t := range types {
			n.zone.rrs = append(n.zone.rrs, n.rrsets[t]...)
		}
	}
}

// reverseZones derives in-addr.arpa / ip6.arpa zones from the subnets,
// rounded out to a label boundary, without zones nested in others.
func reverseZones(nets []netip.Prefix) []string {
	var out []string
	for _, p := range nets {
		p = p.Masked()
		rev, err := dns.ReverseAddr(p.Addr().String())
		if err != nil {
			continue
		}
		labels := dns.SplitDomainName(rev)
		per, total := 8, 4
		if p.Addr().Is6() {
			per, total = 4, 32
		}
		keep := max(p.Bits()/per, 1)
		out = append(out, dns.Fqdn(strings.Join(labels[total-keep:], ".")))
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(z string) bool {
		for _, o := range out {
			if o != z && dns.IsSubDomain(o, z) {
				return true
			}
		}
		return false
	})
}

func inAny(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// WriteZoneFile writes the region zone as one view sees it (lan or WAN) in
// master file format, e.g. for another server to load.
func WriteZoneFile(w io.Writer, cfg Config, z Zone, lan bool) error {
	s, err := New(cfg, nil, nil)
	if err != nil {
		return err
	}
	v := buildView(s.cfg, z, lan, slog.New(slog.DiscardHandler))
	zn := v.zoneOf(s.cfg.Zone)
	var b strings.Builder
	b.WriteString("$ORIGIN " + zn.apex + "\n")
	for _, rr := range append([]dns.RR{zn.soa}, zn.rrs...) {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	_, err = io.WriteString(w, b.String())
	return err
}
