package nameserver_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeSource is a Source whose zone tests replace at will.
type fakeSource struct {
	mu sync.Mutex
	z  nameserver.Zone
}

func (f *fakeSource) Snapshot(context.Context) (nameserver.Zone, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.z, nil
}

func (f *fakeSource) set(z nameserver.Zone) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.z = z
}

func lanNets(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

var (
	wan      = netip.MustParseAddr("203.0.113.7")
	loopback = lanNets("127.0.0.0/8")
)

// bigTXT is 8 strings of 100 bytes at one name: about 900 bytes of answer.
func bigTXT() []nameserver.Record {
	var out []nameserver.Record
	for i := range 8 {
		out = append(out, nameserver.Record{Name: "big.acme", Type: "TXT", Value: fmt.Sprintf("%d%s", i, strings.Repeat("t", 99))})
	}
	return out
}

func testZone(serial uint32) nameserver.Zone {
	return nameserver.Zone{
		Serial: serial,
		Hosts: []nameserver.Host{
			{Name: "web.acme", Addr: netip.MustParseAddr("10.20.0.5")},
			{Name: "db.acme", Addr: netip.MustParseAddr("10.20.0.6")},
			{Name: "app.beta", Addr: netip.MustParseAddr("10.20.0.7")},
			{Name: "rack1.machines", Addr: netip.MustParseAddr("10.20.0.8"), Internal: true},
			// Chosen PTR names: one that resolves to its address, and two
			// that do not (a CNAME, another VM's name), answered by the
			// host's own name instead.
			{Name: "smtp.acme", Addr: netip.MustParseAddr("10.20.0.10"), PTR: "mail.acme"},
			{Name: "stale.acme", Addr: netip.MustParseAddr("10.20.0.11"), PTR: "www.acme"},
			{Name: "dup.acme", Addr: netip.MustParseAddr("10.20.0.12"), PTR: "db.acme"},
		},
		Records: append([]nameserver.Record{
			{Name: "www.acme", Type: "CNAME", Value: "web.acme.cloud.internal.", TTL: 600},
			{Name: "alias.acme", Type: "CNAME", Value: "www.acme.cloud.internal.", TTL: 600},
			{Name: "ext.acme", Type: "CNAME", Value: "example.com.", TTL: 600},
			{Name: "acme", Type: "MX", Value: "mail.example.com.", TTL: 3600, Priority: 10},
			{Name: "acme", Type: "TXT", Value: "v=spf1 -all", TTL: 3600},
			{Name: "v6.acme", Type: "AAAA", Value: "2001:db8::5", TTL: 300},
			{Name: "mail.acme", Type: "A", Value: "10.20.0.10", TTL: 300},
		}, bigTXT()...),
		Networks: lanNets("10.20.0.0/24"),
	}
}

func baseConfig() nameserver.Config {
	return nameserver.Config{
		Zone: "cloud.internal.", NS: []string{"ns1.cloud.internal.", "ns2.cloud.internal."}, TTL: 300,
		WANAddress: wan, LANNetworks: loopback, SecondaryACL: loopback,
	}
}

type running struct {
	srv  *nameserver.Server
	src  *fakeSource
	addr string // host:port, UDP and TCP
	port string
}

// start serves cfg on listen (127.0.0.1:0 unless given) until the test ends.
func start(t *testing.T, cfg nameserver.Config, z nameserver.Zone, listen ...string) running {
	t.Helper()
	src := &fakeSource{z: z}
	srv, err := nameserver.New(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, srv, src, listen...)
}

// serve runs srv, made from src, as start does.
func serve(t *testing.T, srv *nameserver.Server, src *fakeSource, listen ...string) running {
	t.Helper()
	z, _ := src.Snapshot(context.Background())
	addr := "127.0.0.1:0"
	if len(listen) > 0 {
		addr = listen[0]
	}
	pc, ln, err := nameserver.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
	// Serve loads before answering; wait for that so tests see the zone.
	for srv.Serial() != z.Serial {
		time.Sleep(time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	return running{srv: srv, src: src, addr: pc.LocalAddr().String(), port: port}
}

func query(t *testing.T, addr, name string, qtype uint16, mod ...func(*dns.Msg, *dns.Client)) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, f := range mod {
		f(m, c)
	}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return resp
}

func overTCP(_ *dns.Msg, c *dns.Client) { c.Net = "tcp" }
func withRD(m *dns.Msg, _ *dns.Client)  { m.RecursionDesired = true }
func edns(size uint16) func(*dns.Msg, *dns.Client) {
	return func(m *dns.Msg, c *dns.Client) { m.SetEdns0(size, false); c.UDPSize = size }
}

// summary is an answer reduced to what the tests compare.
type summary struct {
	Rcode     string
	AA, TC    bool
	Answer    []string
	AuthSOA   bool
	AnswerLen int
}

func summarize(m *dns.Msg) summary {
	s := summary{Rcode: dns.RcodeToString[m.Rcode], AA: m.Authoritative, TC: m.Truncated, AnswerLen: len(m.Answer)}
	for _, rr := range m.Answer {
		if len(m.Answer) <= 4 {
			s.Answer = append(s.Answer, strings.Join(strings.Fields(rr.String()), " "))
		}
	}
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			s.AuthSOA = true
		}
	}
	return s
}

func TestAnswers(t *testing.T) {
	lan := start(t, baseConfig(), testZone(7))
	wanCfg := baseConfig()
	wanCfg.LANNetworks = nil
	wanSide := start(t, wanCfg, testZone(7))

	for _, tc := range []struct {
		name  string
		addr  string
		qname string
		qtype uint16
		mod   []func(*dns.Msg, *dns.Client)
		want  summary
	}{
		{"vm A from lan", lan.addr, "web.acme.cloud.internal.", dns.TypeA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"web.acme.cloud.internal. 300 IN A 10.20.0.5"}}},
		{"vm A from wan", wanSide.addr, "web.acme.cloud.internal.", dns.TypeA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"web.acme.cloud.internal. 300 IN A 203.0.113.7"}}},
		{"mixed case", lan.addr, "WEB.Acme.cloud.INTERNAL.", dns.TypeA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"web.acme.cloud.internal. 300 IN A 10.20.0.5"}}},
		{"over tcp", lan.addr, "db.acme.cloud.internal.", dns.TypeA, []func(*dns.Msg, *dns.Client){overTCP},
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"db.acme.cloud.internal. 300 IN A 10.20.0.6"}}},
		{"nxdomain", lan.addr, "nope.acme.cloud.internal.", dns.TypeA, nil,
			summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"nodata", lan.addr, "web.acme.cloud.internal.", dns.TypeAAAA, nil,
			summary{Rcode: "NOERROR", AA: true, AuthSOA: true}},
		{"empty non-terminal", lan.addr, "beta.cloud.internal.", dns.TypeA, nil,
			summary{Rcode: "NOERROR", AA: true, AuthSOA: true}},
		{"outside our zones", lan.addr, "example.org.", dns.TypeA, nil, summary{Rcode: "REFUSED"}},
		{"recursion asked from wan", wanSide.addr, "example.org.", dns.TypeA, []func(*dns.Msg, *dns.Client){withRD}, summary{Rcode: "REFUSED"}},
		{"recursion off on lan", lan.addr, "example.org.", dns.TypeA, []func(*dns.Msg, *dns.Client){withRD}, summary{Rcode: "REFUSED"}},
		{"cname chain", lan.addr, "alias.acme.cloud.internal.", dns.TypeA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 3, Answer: []string{
				"alias.acme.cloud.internal. 600 IN CNAME www.acme.cloud.internal.",
				"www.acme.cloud.internal. 600 IN CNAME web.acme.cloud.internal.",
				"web.acme.cloud.internal. 300 IN A 10.20.0.5"}}},
		{"cname leaving the zone", lan.addr, "ext.acme.cloud.internal.", dns.TypeA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"ext.acme.cloud.internal. 600 IN CNAME example.com."}}},
		{"mx", lan.addr, "acme.cloud.internal.", dns.TypeMX, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"acme.cloud.internal. 3600 IN MX 10 mail.example.com."}}},
		{"txt", lan.addr, "acme.cloud.internal.", dns.TypeTXT, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{`acme.cloud.internal. 3600 IN TXT "v=spf1 -all"`}}},
		{"aaaa record", wanSide.addr, "v6.acme.cloud.internal.", dns.TypeAAAA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"v6.acme.cloud.internal. 300 IN AAAA 2001:db8::5"}}},
		{"soa", lan.addr, "cloud.internal.", dns.TypeSOA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"cloud.internal. 300 IN SOA ns1.cloud.internal. hostmaster.cloud.internal. 7 3600 600 1209600 300"}}},
		{"ns", lan.addr, "cloud.internal.", dns.TypeNS, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 2, Answer: []string{"cloud.internal. 300 IN NS ns1.cloud.internal.", "cloud.internal. 300 IN NS ns2.cloud.internal."}}},
		{"ptr from lan", lan.addr, "5.0.20.10.in-addr.arpa.", dns.TypePTR, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"5.0.20.10.in-addr.arpa. 300 IN PTR web.acme.cloud.internal."}}},
		{"ptr nxdomain", lan.addr, "99.0.20.10.in-addr.arpa.", dns.TypePTR, nil, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"reverse soa", lan.addr, "0.20.10.in-addr.arpa.", dns.TypeSOA, nil,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"0.20.10.in-addr.arpa. 300 IN SOA ns1.cloud.internal. hostmaster.cloud.internal. 7 3600 600 1209600 300"}}},
		{"ptr hidden from wan", wanSide.addr, "5.0.20.10.in-addr.arpa.", dns.TypePTR, nil, summary{Rcode: "REFUSED"}},
		{"chaos class", lan.addr, "version.bind.", dns.TypeTXT, []func(*dns.Msg, *dns.Client){func(m *dns.Msg, _ *dns.Client) { m.Question[0].Qclass = dns.ClassCHAOS }},
			summary{Rcode: "REFUSED"}},
		{"axfr over udp", lan.addr, "cloud.internal.", dns.TypeAXFR, nil, summary{Rcode: "REFUSED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(query(t, tc.addr, tc.qname, tc.qtype, tc.mod...))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEDNSAndTruncation(t *testing.T) {
	r := start(t, baseConfig(), testZone(1))
	const big = "big.acme.cloud.internal."

	plain := query(t, r.addr, big, dns.TypeTXT)
	if !plain.Truncated || len(plain.Answer) == len(bigTXT()) {
		t.Errorf("without EDNS0: TC=%v with %d answers; want truncation", plain.Truncated, len(plain.Answer))
	}
	small := query(t, r.addr, big, dns.TypeTXT, edns(700))
	if !small.Truncated || small.IsEdns0() == nil {
		t.Errorf("bufsize 700: TC=%v OPT=%v; want TC and our OPT", small.Truncated, small.IsEdns0())
	}
	full := query(t, r.addr, big, dns.TypeTXT, edns(4096))
	opt := full.IsEdns0()
	if full.Truncated || len(full.Answer) != len(bigTXT()) || opt == nil || opt.UDPSize() != 1232 {
		t.Errorf("bufsize 4096: TC=%v answers=%d OPT=%v; want all 8 and our size 1232", full.Truncated, len(full.Answer), opt)
	}
	if n, _ := full.Pack(); len(n) > 1232 {
		t.Errorf("answer of %d bytes exceeds our UDP size", len(n))
	}
	tcp := query(t, r.addr, big, dns.TypeTXT, overTCP)
	if tcp.Truncated || len(tcp.Answer) != len(bigTXT()) {
		t.Errorf("tcp: TC=%v answers=%d", tcp.Truncated, len(tcp.Answer))
	}
	badvers := query(t, r.addr, big, dns.TypeTXT, func(m *dns.Msg, _ *dns.Client) {
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
	})
	if badvers.Rcode != dns.RcodeBadVers {
		t.Errorf("EDNS version 1: rcode %s, want BADVERS", dns.RcodeToString[badvers.Rcode])
	}
}

func TestAXFR(t *testing.T) {
	open := start(t, baseConfig(), testZone(3))
	closedCfg := baseConfig()
	closedCfg.SecondaryACL = nil
	closed := start(t, closedCfg, testZone(3))

	m := new(dns.Msg)
	m.SetAxfr("cloud.internal.")
	env, err := new(dns.Transfer).In(m, open.addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for e := range env {
		if e.Error != nil {
			t.Fatal(e.Error)
		}
		rrs = append(rrs, e.RR...)
	}
	if len(rrs) < 10 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("transfer: %d records, first %v last %v", len(rrs), rrs[0], rrs[len(rrs)-1])
	}
	if !slices.ContainsFunc(rrs, func(rr dns.RR) bool { return strings.Contains(rr.String(), "10.20.0.5") }) {
		t.Error("transfer lacks web.acme's LAN address")
	}
	env, err = new(dns.Transfer).In(m, closed.addr)
	if err == nil {
		for e := range env {
			err = e.Error
		}
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("rcode: %d", dns.RcodeRefused)) {
		t.Errorf("transfer without ACL: %v, want REFUSED", err)
	}
}

func TestSerialAndNotify(t *testing.T) {
	// A secondary stand-in that records the NOTIFYs it gets.
	got := make(chan *dns.Msg, 8)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sec := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		_ = w.WriteMsg(m)
		got <- r
	})}
	go func() { _ = sec.ActivateAndServe() }()
	t.Cleanup(func() { _ = sec.Shutdown() })

	cfg := baseConfig()
	cfg.Notify = []string{pc.LocalAddr().String()}
	r := start(t, cfg, testZone(10))
	waitNotify := func(serial uint32) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case m := <-got:
				if m.Opcode != dns.OpcodeNotify || len(m.Answer) != 1 {
					t.Fatalf("not a NOTIFY with SOA: %v", m)
				}
				if soa := m.Answer[0].(*dns.SOA); m.Question[0].Name == "cloud.internal." && soa.Serial == serial {
					return
				}
			case <-deadline:
				t.Fatalf("no NOTIFY for serial %d", serial)
			}
		}
	}
	waitNotify(10)

	z := testZone(11)
	z.Hosts = append(z.Hosts, nameserver.Host{Name: "new.acme", Addr: netip.MustParseAddr("10.20.0.9")})
	r.src.set(z)
	if err := r.srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	soa := query(t, r.addr, "cloud.internal.", dns.TypeSOA)
	if s := soa.Answer[0].(*dns.SOA).Serial; s != 11 {
		t.Errorf("serial after change = %d, want 11", s)
	}
	if a := query(t, r.addr, "new.acme.cloud.internal.", dns.TypeA); len(a.Answer) != 1 {
		t.Errorf("new host not answered: %v", a)
	}
	waitNotify(11)
}

func TestRecursionForLANOnly(t *testing.T) {
	upCfg := baseConfig()
	upCfg.Zone = "upstream.test."
	up := start(t, upCfg, nameserver.Zone{Serial: 1, Hosts: []nameserver.Host{{Name: "www", Addr: netip.MustParseAddr("192.0.2.80")}}})

	cfg := baseConfig()
	cfg.Recursion, cfg.Upstreams = true, []string{up.addr}
	lan := start(t, cfg, testZone(1))
	cfg.LANNetworks = nil
	wanSide := start(t, cfg, testZone(1))

	for _, tc := range []struct {
		name string
		addr string
		mod  []func(*dns.Msg, *dns.Client)
		want string
		n    int
	}{
		{"lan udp", lan.addr, []func(*dns.Msg, *dns.Client){withRD}, "NOERROR", 1},
		{"lan tcp", lan.addr, []func(*dns.Msg, *dns.Client){withRD, overTCP}, "NOERROR", 1},
		{"lan without rd", lan.addr, nil, "REFUSED", 0},
		{"wan", wanSide.addr, []func(*dns.Msg, *dns.Client){withRD}, "REFUSED", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := query(t, tc.addr, "www.upstream.test.", dns.TypeA, tc.mod...)
			if dns.RcodeToString[m.Rcode] != tc.want || len(m.Answer) != tc.n {
				t.Errorf("got %s with %d answers, want %s with %d", dns.RcodeToString[m.Rcode], len(m.Answer), tc.want, tc.n)
			}
		})
	}
}

func TestZoneFileGolden(t *testing.T) {
	var b bytes.Buffer
	if err := nameserver.WriteZoneFile(&b, baseConfig(), testZone(42), true); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "cloud.internal.zone")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("zone file (-want +got):\n%s", diff)
	}
	// The text is a valid zone for other servers.
	zp := dns.NewZoneParser(&b, "", "")
	n := 0
	for _, ok := zp.Next(); ok; _, ok = zp.Next() {
		n++
	}
	if err := zp.Err(); err != nil || n < 10 {
		t.Errorf("zone file parses to %d records: %v", n, err)
	}
}

// needTool skips when a peer is missing on a developer machine; CI must have it.
func needTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (Debian package %s)", tool, pkg)
	}
	t.Skipf("%s is missing; install the Debian package %s", tool, pkg)
	return ""
}

func dig(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dig", append([]string{"+time=2", "+tries=1"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestWithDig(t *testing.T) {
	needTool(t, "dig", "bind9-dnsutils")
	r := start(t, baseConfig(), testZone(5))
	closedCfg := baseConfig()
	closedCfg.SecondaryACL = nil
	closed := start(t, closedCfg, testZone(5))
	at := func(rr running) []string { return []string{"@127.0.0.1", "-p", rr.port} }

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"a", append(at(r), "web.acme.cloud.internal", "A"), []string{"status: NOERROR", "flags: qr aa", "web.acme.cloud.internal. 300 IN A 10.20.0.5"}},
		{"a over tcp", append(at(r), "+tcp", "web.acme.cloud.internal", "A"), []string{"status: NOERROR", "10.20.0.5"}},
		{"nxdomain", append(at(r), "nope.acme.cloud.internal", "A"), []string{"status: NXDOMAIN", "AUTHORITY: 1", "SOA ns1.cloud.internal."}},
		{"nodata", append(at(r), "web.acme.cloud.internal", "MX"), []string{"status: NOERROR", "ANSWER: 0", "AUTHORITY: 1", "SOA"}},
		{"refused", append(at(r), "example.org", "A"), []string{"status: REFUSED"}},
		{"cname chain", append(at(r), "alias.acme.cloud.internal", "A"), []string{"CNAME www.acme.cloud.internal.", "CNAME web.acme.cloud.internal.", "IN A 10.20.0.5"}},
		{"mx", append(at(r), "acme.cloud.internal", "MX"), []string{"MX 10 mail.example.com."}},
		{"txt", append(at(r), "acme.cloud.internal", "TXT"), []string{`"v=spf1 -all"`}},
		{"ptr", append(at(r), "-x", "10.20.0.6"), []string{"PTR db.acme.cloud.internal."}},
		{"edns bufsize", append(at(r), "+bufsize=4096", "+ignore", "big.acme.cloud.internal", "TXT"), []string{"udp: 1232", "ANSWER: 8", "flags: qr aa rd;"}},
		{"truncated", append(at(r), "+noedns", "+ignore", "big.acme.cloud.internal", "TXT"), []string{"flags: qr aa tc"}},
		{"tc retried over tcp", append(at(r), "+noedns", "big.acme.cloud.internal", "TXT"), []string{"ANSWER: 8"}},
		{"axfr allowed", append(at(r), "cloud.internal", "AXFR"), []string{"web.acme.cloud.internal. 300 IN A 10.20.0.5", "XFR size:"}},
		{"axfr refused", append(at(closed), "cloud.internal", "AXFR"), []string{"Transfer failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := dig(t, tc.args...)
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tc.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("dig output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestZoneOwnNamesWithDig serves tenant data aimed at the zone's own name
// servers and at addresses that point visitors at themselves, and checks
// with dig that neither view answers any of it.
func TestZoneOwnNamesWithDig(t *testing.T) {
	needTool(t, "dig", "bind9-dnsutils")
	z := nameserver.Zone{
		Serial: 9,
		Hosts: []nameserver.Host{
			{Name: "web.acme", Addr: netip.MustParseAddr("10.20.0.5")},
			{Name: "web.ns1", Addr: netip.MustParseAddr("10.20.0.9")}, // VM "web" of a tenant "ns1"
		},
		Records: []nameserver.Record{
			{Name: "ns1", Type: "A", Value: "198.51.100.66"}, // tenant ns1's "@" record
			{Name: "ns2", Type: "AAAA", Value: "2001:db8::66"},
			{Name: "ns2", Type: "TXT", Value: "taken"},
			{Name: "deep.ns1", Type: "CNAME", Value: "evil.example."},
			{Name: "lo.acme", Type: "A", Value: "127.0.0.1"},
			{Name: "meta.acme", Type: "A", Value: "169.254.169.254"},
			{Name: "any.acme", Type: "A", Value: "0.0.0.0"},
			{Name: "mc.acme", Type: "A", Value: "224.0.0.251"},
			{Name: "lo6.acme", Type: "AAAA", Value: "::1"},
			{Name: "ll6.acme", Type: "AAAA", Value: "fe80::1"},
			{Name: "mapped.acme", Type: "AAAA", Value: "::ffff:127.0.0.1"},
			{Name: "ok.acme", Type: "A", Value: "192.0.2.80"},
		},
		Networks: lanNets("10.20.0.0/24"),
	}
	lanSide := start(t, baseConfig(), z)
	wanCfg := baseConfig()
	wanCfg.LANNetworks = lanNets("10.0.0.0/8") // 127.0.0.1 asks as the internet does
	wanSide := start(t, wanCfg, z)
	for view, rr := range map[string]running{"lan": lanSide, "wan": wanSide} {
		ask := func(args ...string) string { return digFlat(t, rr.port, args...) }
		for _, q := range [][]string{
			{"ns1.cloud.internal", "A"}, {"ns2.cloud.internal", "AAAA"}, {"ns2.cloud.internal", "TXT"},
			{"web.ns1.cloud.internal", "A"}, {"deep.ns1.cloud.internal", "A"}, {"+tcp", "ns1.cloud.internal", "A"},
		} {
			if out := ask(q...); !strings.Contains(out, "status: NXDOMAIN") {
				t.Errorf("%s view: dig %v answered tenant data at a name-server name:\n%s", view, q, out)
			}
		}
		if out := ask("cloud.internal", "NS"); !strings.Contains(out, "NS ns1.cloud.internal.") || !strings.Contains(out, "NS ns2.cloud.internal.") {
			t.Errorf("%s view: the zone's NS set changed:\n%s", view, out)
		}
		if out := ask("cloud.internal", "SOA"); !strings.Contains(out, "SOA ns1.cloud.internal. hostmaster.cloud.internal.") {
			t.Errorf("%s view: the zone's SOA changed:\n%s", view, out)
		}
		for _, q := range [][]string{
			{"lo.acme.cloud.internal", "A"}, {"meta.acme.cloud.internal", "A"}, {"any.acme.cloud.internal", "A"},
			{"mc.acme.cloud.internal", "A"}, {"lo6.acme.cloud.internal", "AAAA"}, {"ll6.acme.cloud.internal", "AAAA"},
			{"mapped.acme.cloud.internal", "AAAA"},
		} {
			if out := ask(q...); !strings.Contains(out, "status: NXDOMAIN") {
				t.Errorf("%s view: dig %v served an address visitors cannot be sent to:\n%s", view, q, out)
			}
		}
		if out := ask("ok.acme.cloud.internal", "A"); !strings.Contains(out, "IN A 192.0.2.80") {
			t.Errorf("%s view: an ordinary record is not served:\n%s", view, out)
		}
		if out := ask("cloud.internal", "AXFR"); view == "lan" && (strings.Contains(out, "198.51.100.66") || strings.Contains(out, "IN A 127.0.0.1") || !strings.Contains(out, "ok.acme")) {
			t.Errorf("%s view: the transfer carries guarded names:\n%s", view, out)
		}
	}
	if out := digFlat(t, wanSide.port, "web.acme.cloud.internal", "A"); !strings.Contains(out, "IN A 203.0.113.7") {
		t.Errorf("wan view: VM names no longer answer the public address:\n%s", out)
	}
}

// digFlat asks the server on 127.0.0.1:port and returns dig's output on
// one line.
func digFlat(t *testing.T, port string, args ...string) string {
	t.Helper()
	return strings.Join(strings.Fields(dig(t, append([]string{"@127.0.0.1", "-p", port}, args...)...)), " ")
}

// TestServeStopsRightAfterStart cancels Serve as soon as it has loaded the
// zone, before its listeners may be up, many times over: it must always
// return.
func TestServeStopsRightAfterStart(t *testing.T) {
	for range 200 {
		srv, err := nameserver.New(baseConfig(), &fakeSource{z: nameserver.Zone{Serial: 1}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pc, ln, err := nameserver.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, pc, ln) }()
		for srv.Serial() != 1 {
			runtime.Gosched()
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context ended")
		}
	}
}
