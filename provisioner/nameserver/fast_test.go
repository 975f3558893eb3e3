package nameserver_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
)

// slowAnswer is what ServeDNS writes for wire over UDP from src.
func slowAnswer(t testing.TB, srv *nameserver.Server, wire []byte, src netip.Addr) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatalf("fast path answered a query that does not unpack: %v", err)
	}
	w := &fakeWriter{remote: &net.UDPAddr{IP: src.AsSlice(), Port: 5353}}
	if _, err := srv.ServeDNS(context.Background(), w, m); err != nil || w.err != nil {
		t.Fatalf("serve: %v %v", err, w.err)
	}
	got := new(dns.Msg)
	if err := got.Unpack(w.out); err != nil {
		t.Fatalf("slow answer does not unpack: %v", err)
	}
	return got
}

// sameAnswer fails t when the fast reply to wire differs from ServeDNS's.
func sameAnswer(t testing.TB, srv *nameserver.Server, wire, fast []byte, src netip.Addr) {
	t.Helper()
	want := slowAnswer(t, srv, wire, src)
	got := new(dns.Msg)
	if err := got.Unpack(fast); err != nil {
		t.Fatalf("fast answer does not unpack: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("fast path differs from ServeDNS for %v from %v (-slow +fast):\n%s", want.Question, src, diff)
	}
	// The question goes back byte for byte, 0x20 case included.
	end := 12
	for fast[end] != 0 {
		end += int(fast[end]) + 1
	}
	end += 5
	if !bytes.Equal(fast[12:end], wire[12:end]) {
		t.Fatalf("question not echoed: %q vs %q", fast[12:end], wire[12:end])
	}
}

// mixCase flips letters at random, as resolvers doing 0x20 do.
func mixCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && r.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// TestFastPathMatchesServeDNS generates many queries and, wherever the fast
// path answers, compares its reply with the full handler's.
func TestFastPathMatchesServeDNS(t *testing.T) {
	names := []string{"cloud.internal.", "web.acme.cloud.internal.", "db.acme.cloud.internal.", "acme.cloud.internal.",
		"www.acme.cloud.internal.", "alias.acme.cloud.internal.", "ext.acme.cloud.internal.", "v6.acme.cloud.internal.",
		"big.acme.cloud.internal.", "app.beta.cloud.internal.", "beta.cloud.internal.", "missing.acme.cloud.internal.",
		"a.b.c.web.acme.cloud.internal.", "ns1.cloud.internal.", "5.0.20.10.in-addr.arpa.", "6.0.20.10.in-addr.arpa.",
		"9.0.20.10.in-addr.arpa.", "0.20.10.in-addr.arpa.", "20.10.in-addr.arpa.", "example.org.", "internal.",
		"xcloud.internal.", "web_1.acme.cloud.internal.", "we\\.b.acme.cloud.internal.", "w\\195b.acme.cloud.internal.",
		"rack1.machines.cloud.internal.", "machines.cloud.internal.", "x.rack1.machines.cloud.internal.", "8.0.20.10.in-addr.arpa.",
		"10.0.20.10.in-addr.arpa.", "11.0.20.10.in-addr.arpa.", "12.0.20.10.in-addr.arpa.", "99.0.20.10.in-addr.arpa.",
		"x.10.0.20.10.in-addr.arpa.", "mail.acme.cloud.internal.", "smtp.acme.cloud.internal.", "1.0.20.10.in-addr.arpa."}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT, dns.TypeSOA, dns.TypeNS,
		dns.TypePTR, dns.TypeSRV, dns.TypeCAA, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeNone, dns.TypeReserved, dns.TypeOPT}
	for _, rec := range []bool{false, true} {
		t.Run(fmt.Sprintf("recursion=%v", rec), func(t *testing.T) {
			cfg := baseConfig()
			cfg.LANNetworks = lanNets("10.0.0.0/8")
			cfg.Recursion = rec
			cfg.Upstreams = []string{"127.0.0.1:1"}
			srv := loaded(t, cfg, testZone(1))
			r := rand.New(rand.NewPCG(1, 2))
			fast, total := 0, 0
			for range 20000 {
				m := new(dns.Msg)
				m.SetQuestion(mixCase(r, names[r.IntN(len(names))]), qtypes[r.IntN(len(qtypes))])
				m.Id = uint16(r.Uint32())
				m.RecursionDesired = r.IntN(2) == 0
				m.CheckingDisabled = r.IntN(4) == 0
				m.AuthenticatedData = r.IntN(4) == 0
				switch r.IntN(6) {
				case 1:
					m.SetEdns0(512, false)
				case 2:
					m.SetEdns0(4096, true)
				case 3:
					m.SetEdns0(uint16(r.IntN(2000)), r.IntN(2) == 0)
					m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
				case 4:
					m.SetEdns0(1232, false)
					m.IsEdns0().SetVersion(1)
				case 5:
					m.SetEdns0(1232, false)
					m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
				}
				if r.IntN(50) == 0 {
					m.Opcode = dns.OpcodeNotify
				}
				if r.IntN(50) == 0 {
					m.Question[0].Qclass = dns.ClassANY
				}
				wire, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				src := netip.MustParseAddr("192.0.2.1")
				if r.IntN(2) == 0 {
					src = netip.MustParseAddr("10.1.2.3")
				}
				total++
				out, ok := srv.AnswerUDP(nil, wire, src)
				if !ok {
					continue
				}
				fast++
				sameAnswer(t, srv, wire, out, src)
			}
			t.Logf("fast path answered %d of %d queries", fast, total)
			if fast < total/3 {
				t.Errorf("fast path answered only %d of %d", fast, total)
			}
		})
	}
}

// TestFastPathCoverage pins which queries take the fast path, so that a
// change that silently sends the common case back to the slow path fails.
func TestFastPathCoverage(t *testing.T) {
	cfg := baseConfig()
	cfg.LANNetworks = lanNets("10.0.0.0/8")
	srv := loaded(t, cfg, testZone(1))
	lan, wanSrc := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
		src   netip.Addr
		mod   func(*dns.Msg)
		fast  bool
	}{
		{"vm address", "web.acme.cloud.internal.", dns.TypeA, lan, nil, true},
		{"vm address 0x20", "wEb.AcMe.cloud.INTERNAL.", dns.TypeA, wanSrc, nil, true},
		{"nxdomain", "nope.acme.cloud.internal.", dns.TypeA, lan, nil, true},
		{"nodata", "web.acme.cloud.internal.", dns.TypeMX, lan, nil, true},
		{"cname chain", "alias.acme.cloud.internal.", dns.TypeA, lan, nil, true},
		{"ptr", "5.0.20.10.in-addr.arpa.", dns.TypePTR, lan, nil, true},
		{"chosen ptr", "10.0.20.10.in-addr.arpa.", dns.TypePTR, lan, nil, true},
		{"unconfirmed chosen ptr", "11.0.20.10.in-addr.arpa.", dns.TypePTR, lan, nil, true},
		{"ptr of no vm", "99.0.20.10.in-addr.arpa.", dns.TypePTR, lan, nil, true},
		{"ptr 0x20", "10.0.20.10.IN-ADDR.Arpa.", dns.TypePTR, lan, nil, true},
		{"ptr from wan", "10.0.20.10.in-addr.arpa.", dns.TypePTR, wanSrc, nil, true},
		{"refused outside", "example.org.", dns.TypeA, lan, nil, true},
		{"edns do", "web.acme.cloud.internal.", dns.TypeA, lan, func(m *dns.Msg) { m.SetEdns0(1232, true) }, true},
		{"any goes slow", "web.acme.cloud.internal.", dns.TypeANY, lan, nil, false},
		{"truncation goes slow", "big.acme.cloud.internal.", dns.TypeTXT, lan, nil, false},
		{"big with edns fits", "big.acme.cloud.internal.", dns.TypeTXT, lan, func(m *dns.Msg) { m.SetEdns0(1232, false) }, true},
		{"bad version goes slow", "web.acme.cloud.internal.", dns.TypeA, lan, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }, false},
		{"escaped label goes slow", "we\\.b.acme.cloud.internal.", dns.TypeA, lan, nil, false},
		{"notify goes slow", "cloud.internal.", dns.TypeSOA, lan, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }, false},
		{"two questions go slow", "web.acme.cloud.internal.", dns.TypeA, lan, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			if tc.mod != nil {
				tc.mod(m)
			}
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			out, ok := srv.AnswerUDP(nil, wire, tc.src)
			if ok != tc.fast {
				t.Fatalf("fast path %v, want %v", ok, tc.fast)
			}
			if ok {
				sameAnswer(t, srv, wire, out, tc.src)
			}
		})
	}
}

// TestFastPathOverUDP asks a running server over loopback, where the fast
// path answers, with a 0x20 mixed-case name and a reply bigger than 512.
func TestFastPathOverUDP(t *testing.T) {
	r := start(t, baseConfig(), testZone(1))
	resp := query(t, r.addr, "WeB.aCmE.cloud.internal.", dns.TypeA)
	if got := summarize(resp); got.Rcode != "NOERROR" || !got.AA || len(got.Answer) != 1 || !strings.Contains(got.Answer[0], "10.20.0.5") {
		t.Errorf("A: %+v", got)
	}
	if resp.Question[0].Name != "WeB.aCmE.cloud.internal." {
		t.Errorf("question came back as %q", resp.Question[0].Name)
	}
	resp = query(t, r.addr, "big.acme.cloud.internal.", dns.TypeTXT, edns(1232))
	if got := summarize(resp); got.TC || got.AnswerLen != 8 || resp.IsEdns0() == nil {
		t.Errorf("big TXT: %+v", got)
	}
}

// TestUDPListenModes serves on one address (batched reads) and on every
// address (per-packet sessions, so replies leave from the address asked),
// over IPv4 and IPv6, and checks fast and full answers in each.
func TestUDPListenModes(t *testing.T) {
	for _, tc := range []struct {
		listen, ask string
		want        string // web.acme A: LAN (127/8) or WAN view (::1)
	}{
		{"127.0.0.1:0", "127.0.0.1", "10.20.0.5"},
		{"[::1]:0", "::1", "203.0.113.7"},
		{"0.0.0.0:0", "127.0.0.1", "10.20.0.5"},
		{"[::]:0", "127.0.0.1", "10.20.0.5"},
		{"[::]:0", "::1", "203.0.113.7"},
	} {
		t.Run(tc.listen+" asked at "+tc.ask, func(t *testing.T) {
			r := start(t, baseConfig(), testZone(1), tc.listen)
			addr := net.JoinHostPort(tc.ask, r.port)
			a := summarize(query(t, addr, "web.acme.cloud.internal.", dns.TypeA))
			if a.Rcode != "NOERROR" || len(a.Answer) != 1 || !strings.HasSuffix(a.Answer[0], tc.want) {
				t.Errorf("A (fast path): %+v", a)
			}
			any := summarize(query(t, addr, "web.acme.cloud.internal.", dns.TypeANY))
			if any.Rcode != "NOERROR" || len(any.Answer) != 1 || !strings.HasSuffix(any.Answer[0], tc.want) {
				t.Errorf("ANY (full handler): %+v", any)
			}
			nx := summarize(query(t, addr, "nope.acme.cloud.internal.", dns.TypeA))
			if nx.Rcode != "NXDOMAIN" || !nx.AuthSOA {
				t.Errorf("NXDOMAIN: %+v", nx)
			}
		})
	}
}

// BenchmarkAnswerUDP is the fast path's share of a query, the same mix as
// BenchmarkServeDNS, from wire bytes to wire bytes.
func BenchmarkAnswerUDP(b *testing.B) {
	srv := loaded(b, baseConfig(), benchZone(10000))
	var wires [][]byte
	for i := range 1000 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("vm%d.tenant%d.cloud.internal.", i*10, i*10%100), dns.TypeA)
		if i%10 == 0 {
			m.SetQuestion(fmt.Sprintf("missing%d.tenant1.cloud.internal.", i), dns.TypeA)
		}
		m.SetEdns0(1232, false)
		w, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		wires = append(wires, w)
	}
	src := netip.MustParseAddr("127.0.0.1")
	out := make([]byte, 0, 512)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := srv.AnswerUDP(out[:0], wires[i%len(wires)], src); !ok {
			b.Fatal("not answered by the fast path")
		}
		i++
	}
}

// BenchmarkRefresh is the cost of a new snapshot with its pre-packed
// answers, paid once per serial.
func BenchmarkRefresh(b *testing.B) {
	z := benchZone(10000)
	src := &fakeSource{z: z}
	srv, err := nameserver.New(baseConfig(), src, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		z.Serial++
		src.set(z)
		if err := srv.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
