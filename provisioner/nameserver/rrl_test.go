package nameserver_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
)

// stillClock moves only when the test says so, so counts do not depend on
// how fast the machine is.
type stillClock struct{ ns atomic.Int64 }

func (c *stillClock) now() time.Time          { return time.Unix(1700000000, c.ns.Load()) }
func (c *stillClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// rrlConfig treats loopback as the internet (LAN is 10/8 only), limits it
// to 10 answers a second, and exempts 127.0.0.3.
func rrlConfig() nameserver.Config {
	cfg := baseConfig()
	cfg.LANNetworks = lanNets("10.0.0.0/8")
	cfg.RRL = nameserver.RateLimit{Rate: 10, Exempt: lanNets("127.0.0.3/32")}
	return cfg
}

// startRRL serves cfg with the limiter on a clock of the test's.
func startRRL(t *testing.T, cfg nameserver.Config, z nameserver.Zone) (running, *stillClock) {
	t.Helper()
	src := &fakeSource{z: z}
	srv, err := nameserver.New(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &stillClock{}
	srv.SetRRLClock(clk.now)
	return serve(t, srv, src), clk
}

// tally counts the replies to a burst.
type tally struct {
	Full, Truncated, Other int
}

// burst sends n queries for name from the local address at once, with
// EDNS0 so the big TXT fits, and counts what comes back until the server
// has been quiet for a while. full is an answer with want records.
func burst(t *testing.T, addr, local string, n int, names func(i int) string, qtype uint16, want int) tally {
	t.Helper()
	c := &dns.Client{Net: "udp", UDPSize: 1232, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(local)}}}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan tally, 1)
	go func() {
		var got tally
		seen := map[uint16]bool{}
		for {
			_ = conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
			m, err := conn.ReadMsg()
			if err != nil {
				if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
					got.Other++
				}
				done <- got
				return
			}
			if seen[m.Id] {
				got.Other++
				continue
			}
			seen[m.Id] = true
			switch {
			case m.Truncated && len(m.Answer) == 0 && len(m.Ns) == 0:
				got.Truncated++
			case !m.Truncated && len(m.Answer) == want:
				got.Full++
			default:
				got.Other++
			}
			if len(seen) == n {
				done <- got
				return
			}
		}
	}()
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion(names(i), qtype)
		m.Id = uint16(i + 1)
		m.SetEdns0(1232, false)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	return <-done
}

func same(name string) func(int) string { return func(int) string { return name } }

// digMay runs dig and returns its output on one line, failed or not (a
// dropped answer is a timeout).
func digMay(port string, args ...string) string {
	out, _ := exec.Command("dig", append([]string{"@127.0.0.1", "-p", port, "+tries=1", "+time=1"}, args...)...).CombinedOutput()
	return strings.Join(strings.Fields(string(out)), " ")
}

// TestRateLimitOverUDP floods the real server from one source network
// with a large answer: after the burst only slipped, empty TC=1 answers
// and nothing else arrive, while TCP, exempt sources, other networks and
// other names are answered in full, and answers resume when the window
// has passed.
func TestRateLimitOverUDP(t *testing.T) {
	needTool(t, "dig", "bind9-dnsutils")
	r, clk := startRRL(t, rrlConfig(), testZone(1))
	const big = "big.acme.cloud.internal."

	// Burst 10 tokens, a large answer spends 2: 5 answers, then every
	// other one of the 35 left is slipped.
	got := burst(t, r.addr, "127.0.0.1", 40, same(big), dns.TypeTXT, 8)
	t.Logf("flood of 40: %+v", got)
	if got.Full > 5 || got.Full < 3 || got.Truncated < 12 || got.Truncated > 18 || got.Other != 0 {
		t.Errorf("flood of 40: %+v, want at most 5 full and about 17 truncated, the rest dropped", got)
	}

	// dig over UDP gets a truncated answer (then, on its own, the full one
	// over TCP) or nothing; asked over TCP it gets everything.
	var slipped, dropped int
	for range 2 {
		out := digMay(r.port, "+bufsize=1232", big, "TXT")
		switch {
		case strings.Contains(out, "Truncated, retrying in TCP mode") && strings.Contains(out, "ANSWER: 8"):
			slipped++
		case strings.Contains(out, "timed out"):
			dropped++
		default:
			t.Errorf("dig over UDP while limited:\n%s", out)
		}
	}
	if slipped != 1 || dropped != 1 {
		t.Errorf("dig over UDP: %d slipped and %d dropped, want one each", slipped, dropped)
	}
	if out := digMay(r.port, "+tcp", big, "TXT"); !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "ANSWER: 8") {
		t.Errorf("dig over TCP while UDP is limited:\n%s", out)
	}
	if m := query(t, r.addr, big, dns.TypeTXT, overTCP); m.Truncated || len(m.Answer) != 8 {
		t.Errorf("miekg over TCP while UDP is limited: TC=%v, %d answers", m.Truncated, len(m.Answer))
	}

	for _, tc := range []struct {
		name  string
		local string
		qname string
		qtype uint16
		rrs   int // records in a full answer
		n     int
		want  tally
	}{
		{"same /24 shares the bucket", "127.0.0.2", big, dns.TypeTXT, 8, 4, tally{Truncated: 2}},
		{"exempt source", "127.0.0.3", big, dns.TypeTXT, 8, 40, tally{Full: 40}},
		{"other source network", "127.1.0.2", big, dns.TypeTXT, 8, 5, tally{Full: 5}},
		{"other name, same source", "127.0.0.1", "web.acme.cloud.internal.", dns.TypeA, 1, 10, tally{Full: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := burst(t, r.addr, tc.local, tc.n, same(tc.qname), tc.qtype, tc.rrs); got != tc.want {
				t.Errorf("%d queries from %s: %+v, want %+v", tc.n, tc.local, got, tc.want)
			}
		})
	}
	if out := digMay(r.port, "-b", "127.0.0.3", "+bufsize=1232", big, "TXT"); strings.Contains(out, "Truncated") || !strings.Contains(out, "ANSWER: 8") {
		t.Errorf("dig from the exempt source:\n%s", out)
	}

	// Random names that do not exist share their zone's NXDOMAIN bucket
	// (each answer carries the SOA: more than twice the query).
	nx := burst(t, r.addr, "127.1.0.9", 30, func(i int) string { return fmt.Sprintf("x%d.acme.cloud.internal.", i) }, dns.TypeA, 0)
	if nx.Full > 5 || nx.Truncated < 8 || nx.Other != 0 {
		t.Errorf("30 random NXDOMAIN names: %+v, want at most 5 answered", nx)
	}

	// A second later the bucket is full again: 4 answers here, 1 for dig.
	clk.advance(time.Second)
	if got := burst(t, r.addr, "127.0.0.1", 4, same(big), dns.TypeTXT, 8); got != (tally{Full: 4}) {
		t.Errorf("after the window: %+v, want 4 full answers", got)
	}
	if out := digMay(r.port, "+bufsize=1232", "+ignore", big, "TXT"); !strings.Contains(out, "ANSWER: 8") || strings.Contains(out, " tc") {
		t.Errorf("dig after the window:\n%s", out)
	}
}

// TestRateLimitRealClock checks the limit on the wall clock, with margins:
// a flood is cut to about the burst, and a second later answers resume.
func TestRateLimitRealClock(t *testing.T) {
	r := start(t, rrlConfig(), testZone(1))
	const big = "big.acme.cloud.internal."
	begin := time.Now()
	got := burst(t, r.addr, "127.0.0.1", 40, same(big), dns.TypeTXT, 8)
	// Refill while the flood lasted: 10 tokens a second, 2 per answer.
	allowed := 5 + int(time.Since(begin).Seconds()*5) + 1
	if got.Full > allowed || got.Truncated < 5 {
		t.Errorf("flood of 40 on the wall clock: %+v, want at most %d full", got, allowed)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := burst(t, r.addr, "127.0.0.1", 3, same(big), dns.TypeTXT, 8); got.Full < 2 {
		t.Errorf("a second later: %+v, want answers again", got)
	}
}

// TestRateLimitLANAndTCPUnlimited sends floods that would be limited from
// the WAN from a LAN source and over TCP.
func TestRateLimitLANAndTCPUnlimited(t *testing.T) {
	cfg := rrlConfig()
	cfg.LANNetworks = loopback
	r, _ := startRRL(t, cfg, testZone(1))
	if got := burst(t, r.addr, "127.0.0.1", 40, same("big.acme.cloud.internal."), dns.TypeTXT, 8); got != (tally{Full: 40}) {
		t.Errorf("LAN flood: %+v, want all 40 answered", got)
	}
	w, _ := startRRL(t, rrlConfig(), testZone(1))
	for i := range 30 {
		if m := query(t, w.addr, "big.acme.cloud.internal.", dns.TypeTXT, overTCP); len(m.Answer) != 8 {
			t.Fatalf("TCP query %d: %d answers", i, len(m.Answer))
		}
	}
}

// TestRateLimitPathsAgree runs random queries from WAN sources through two
// servers limited alike: one the way the UDP socket does (fast path, else
// the full handler), the other through the full handler only. They must
// send, slip and drop the same answers, byte for byte.
func TestRateLimitPathsAgree(t *testing.T) {
	cfg := rrlConfig()
	// Burst 1: every answer costs one, whatever its size in either path.
	cfg.RRL = nameserver.RateLimit{Rate: 1, Slip: 2}
	z := testZone(1)
	fast, slow := loaded(t, cfg, z), loaded(t, cfg, z)
	clkF, clkS := &stillClock{}, &stillClock{}
	fast.SetRRLClock(clkF.now)
	slow.SetRRLClock(clkS.now)
	names := []string{"web.acme.cloud.internal.", "big.acme.cloud.internal.", "nope.acme.cloud.internal.", "x.acme.cloud.internal.",
		"acme.cloud.internal.", "cloud.internal.", "alias.acme.cloud.internal.", "example.org.", "we\\.b.acme.cloud.internal."}
	qtypes := []uint16{dns.TypeA, dns.TypeTXT, dns.TypeMX, dns.TypeSOA, dns.TypeANY, dns.TypeAXFR}
	srcs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("198.51.100.1"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.1.2.3")}
	rnd := rand.New(rand.NewPCG(3, 4))
	var sent, slipped, dropped int
	for i := range 5000 {
		m := new(dns.Msg)
		m.SetQuestion(mixCase(rnd, names[rnd.IntN(len(names))]), qtypes[rnd.IntN(len(qtypes))])
		m.Id = uint16(i)
		switch rnd.IntN(3) {
		case 1:
			m.SetEdns0(1232, rnd.IntN(2) == 0)
		case 2:
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
		}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		src := srcs[rnd.IntN(len(srcs))]
		if rnd.IntN(100) == 0 {
			clkF.advance(700 * time.Millisecond)
			clkS.advance(700 * time.Millisecond)
		}
		got, ok := fast.AnswerUDP(nil, wire, src)
		if !ok {
			got = udpOut(t, fast, wire, src)
		}
		want := udpOut(t, slow, wire, src)
		if len(got) == 0 || len(want) == 0 {
			if len(got) != len(want) {
				t.Fatalf("query %d (%v from %v): one path dropped, the other sent %d/%d bytes", i, m.Question, src, len(got), len(want))
			}
			dropped++
			continue
		}
		g, w := new(dns.Msg), new(dns.Msg)
		if err := g.Unpack(got); err != nil {
			t.Fatal(err)
		}
		if err := w.Unpack(want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Fatalf("query %d (%v from %v) (-full handler +socket path):\n%s", i, m.Question, src, diff)
		}
		if g.Truncated && len(g.Answer)+len(g.Ns) == 0 {
			slipped++
		} else {
			sent++
		}
	}
	t.Logf("sent %d, slipped %d, dropped %d", sent, slipped, dropped)
	if slipped < 100 || dropped < 100 {
		t.Errorf("sent %d, slipped %d, dropped %d: the limit hardly applied", sent, slipped, dropped)
	}
}

// udpOut is what ServeDNS writes over UDP to src, empty when nothing.
func udpOut(t *testing.T, srv *nameserver.Server, wire []byte, src netip.Addr) []byte {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	w := &fakeWriter{remote: &net.UDPAddr{IP: src.AsSlice(), Port: 5353}}
	if _, err := srv.ServeDNS(context.Background(), w, m); err != nil || w.err != nil {
		t.Fatalf("serve: %v %v", err, w.err)
	}
	return w.out
}

// TestMinimalANY answers ANY over UDP with one RRset (RFC 8482) and in
// full over TCP.
func TestMinimalANY(t *testing.T) {
	r := start(t, baseConfig(), testZone(1))
	for _, tc := range []struct {
		name    string
		qname   string
		mod     []func(*dns.Msg, *dns.Client)
		answers []string // types
	}{
		{"apex over udp", "cloud.internal.", nil, []string{"SOA"}},
		{"apex over tcp", "cloud.internal.", []func(*dns.Msg, *dns.Client){overTCP}, []string{"NS", "NS", "SOA"}},
		{"tenant over udp", "acme.cloud.internal.", nil, []string{"MX"}},
		{"tenant over tcp", "acme.cloud.internal.", []func(*dns.Msg, *dns.Client){overTCP}, []string{"MX", "TXT"}},
		{"cname", "www.acme.cloud.internal.", nil, []string{"CNAME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := query(t, r.addr, tc.qname, dns.TypeANY, tc.mod...)
			var got []string
			for _, rr := range m.Answer {
				got = append(got, dns.TypeToString[rr.Header().Rrtype])
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.answers, got); diff != "" {
				t.Errorf("ANY %s (-want +got):\n%s", tc.qname, diff)
			}
		})
	}
}

// BenchmarkAnswerUDPWithRRL is the fast path for WAN sources without the
// limit, with it (nothing limited: the accounting alone; "churn" asks from
// so many networks that the table is always full and forgetting), and
// under a flood (everything dropped).
func BenchmarkAnswerUDPWithRRL(b *testing.B) {
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
	var srcs []netip.Addr
	for i := range 256 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 18, byte(i), 1}))
	}
	for _, bc := range []struct {
		name  string
		rrl   nameserver.RateLimit
		nsrcs int
	}{
		{"off", nameserver.RateLimit{}, 16},
		{"on", nameserver.RateLimit{Rate: 1000000}, 16},           // 2000 buckets
		{"churn", nameserver.RateLimit{Rate: 1000000}, len(srcs)}, // 32000 buckets, 20000 kept
		{"flood", nameserver.RateLimit{Rate: 1, Slip: -1}, 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := baseConfig()
			cfg.LANNetworks = nil
			cfg.RRL = bc.rrl
			srv := loaded(b, cfg, benchZone(10000))
			out := make([]byte, 0, 512)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := srv.AnswerUDP(out[:0], wires[i%len(wires)], srcs[i%bc.nsrcs]); !ok {
					b.Fatal("not answered by the fast path")
				}
				i++
			}
		})
	}
}

// BenchmarkServeDNSWithRRL is the full handler for a WAN source with and
// without the limit.
func BenchmarkServeDNSWithRRL(b *testing.B) {
	var msgs []*dns.Msg
	for i := range 1000 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("vm%d.tenant%d.cloud.internal.", i*10, i*10%100), dns.TypeA)
		m.SetEdns0(1232, false)
		msgs = append(msgs, m)
	}
	for _, bc := range []struct {
		name string
		rrl  nameserver.RateLimit
	}{{"off", nameserver.RateLimit{}}, {"on", nameserver.RateLimit{Rate: 1000000}}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := baseConfig()
			cfg.LANNetworks = nil
			cfg.RRL = bc.rrl
			srv := loaded(b, cfg, benchZone(10000))
			w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 5353}}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := srv.ServeDNS(ctx, w, msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
