package nameserver_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
)

var loopbackUDP = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}

// fakeWriter captures what the handler writes, packing it as the wire would.
type fakeWriter struct {
	remote net.Addr
	out    []byte
	err    error
}

func (w *fakeWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	w.out, w.err = m.PackBuffer(w.out[:0])
	return w.err
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.out = append(w.out[:0], b...)
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

func loaded(t testing.TB, cfg nameserver.Config, z nameserver.Zone) *nameserver.Server {
	t.Helper()
	srv, err := nameserver.New(cfg, &fakeSource{z: z}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv
}

// FuzzServeDNS feeds arbitrary wire bytes, over UDP and TCP, from LAN and
// WAN sources: the handler must not panic and must answer in packable form,
// and the UDP fast path, where it answers, must answer the same.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name string
		t    uint16
	}{{"web.acme.cloud.internal.", dns.TypeA}, {"cloud.internal.", dns.TypeAXFR}, {"big.acme.cloud.internal.", dns.TypeTXT},
		{"alias.acme.cloud.internal.", dns.TypeANY}, {"5.0.20.10.in-addr.arpa.", dns.TypePTR}, {"example.org.", dns.TypeA},
		{"10.0.20.10.in-addr.arpa.", dns.TypePTR}, {"11.0.20.10.in-addr.arpa.", dns.TypePTR}, {"99.0.20.10.in-addr.arpa.", dns.TypePTR},
		{"WeB.acme.cloud.internal.", dns.TypeMX}, {"nope.acme.cloud.internal.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.t)
		plain, _ := m.Pack() // what the fast path sees most
		f.Add(plain, false, false)
		m.SetEdns0(4096, true)
		b, _ := m.Pack()
		f.Add(b, true, false)
		f.Add(b, false, true)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}
		cookie, _ := m.Pack()
		f.Add(cookie, false, true)
	}
	cfg := baseConfig()
	cfg.LANNetworks = lanNets("10.0.0.0/8")
	cfg.SecondaryACL = lanNets("10.0.0.0/8")
	srv := loaded(f, cfg, testZone(1))
	f.Fuzz(func(t *testing.T, wire []byte, tcp, lan bool) {
		ip := net.IPv4(192, 0, 2, 1)
		if lan {
			ip = net.IPv4(10, 1, 2, 3)
		}
		if !tcp {
			// The UDP fast path sees the raw bytes first; whatever it
			// answers must be what the full handler answers.
			src, _ := netip.AddrFromSlice(ip.To4())
			if out, ok := srv.AnswerUDP(nil, wire, src); ok {
				sameAnswer(t, srv, wire, out, src)
			}
		}
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			return // the server library answers FORMERR before us
		}
		w := &fakeWriter{remote: &net.UDPAddr{IP: ip, Port: 5353}}
		if tcp {
			w.remote = &net.TCPAddr{IP: ip, Port: 5353}
		}
		if _, err := srv.ServeDNS(context.Background(), w, m); err != nil && w.err == nil {
			t.Logf("serve: %v", err)
		}
		if w.err != nil {
			t.Fatalf("answer does not pack: %v", w.err)
		}
	})
}

// benchZone has n VMs spread over 100 tenants.
func benchZone(n int) nameserver.Zone {
	z := nameserver.Zone{Serial: 1, Networks: lanNets("10.64.0.0/16")}
	for i := range n {
		z.Hosts = append(z.Hosts, nameserver.Host{Name: fmt.Sprintf("vm%d.tenant%d", i, i%100),
			Addr: netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)})})
	}
	return z
}

func BenchmarkServeDNS(b *testing.B) {
	srv := loaded(b, baseConfig(), benchZone(10000))
	var msgs []*dns.Msg
	for i := range 1000 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("vm%d.tenant%d.cloud.internal.", i*10, i*10%100), dns.TypeA)
		if i%10 == 0 {
			m.SetQuestion(fmt.Sprintf("missing%d.tenant1.cloud.internal.", i), dns.TypeA)
		}
		m.SetEdns0(1232, false)
		msgs = append(msgs, m)
	}
	w := &fakeWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := srv.ServeDNS(ctx, w, msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

var benchServe = flag.String("dnsbench.dir", "", "write a 10k-record zone, NSD zone file and dnsperf queries there, then serve on -dnsbench.listen until SIGTERM")
var benchListen = flag.String("dnsbench.listen", "127.0.0.1:5390", "address for -dnsbench.dir")

// TestServeForBench is run by .ci/bench-dns.sh: it serves the same zone it
// hands to NSD, so the two are measured on identical data.
func TestServeForBench(t *testing.T) {
	if *benchServe == "" {
		t.Skip("only for .ci/bench-dns.sh (-dnsbench.dir)")
	}
	z := benchZone(10000)
	cfg := baseConfig()
	zf, err := os.Create(filepath.Join(*benchServe, "cloud.internal.zone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nameserver.WriteZoneFile(zf, cfg, z, true); err != nil {
		t.Fatal(err)
	}
	if err := zf.Close(); err != nil {
		t.Fatal(err)
	}
	qf, err := os.Create(filepath.Join(*benchServe, "queries"))
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(qf)
	for i := range 10000 {
		if i%10 == 9 {
			fmt.Fprintf(bw, "missing%d.tenant%d.cloud.internal A\n", i, i%100)
		} else {
			fmt.Fprintf(bw, "vm%d.tenant%d.cloud.internal A\n", i, i%100)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = qf.Close()
	srv := loaded(t, cfg, z)
	pc, ln, err := nameserver.Listen(*benchListen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("ready")
	_ = srv.Serve(ctx, pc, ln)
}

// TestSplitHorizonNamespaces asks from two real source addresses: one in a
// LAN network, one outside it, each in its own network namespace.
func TestSplitHorizonNamespaces(t *testing.T) {
	needTool(t, "ip", "iproute2")
	needTool(t, "dig", "bind9-dnsutils")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("network namespaces need root")
		}
		t.Skip("network namespaces need root")
	}
	id := os.Getpid() % 10000
	lanNS, wanNS := fmt.Sprintf("fxdnsl%d", id), fmt.Sprintf("fxdnsw%d", id)
	vl, vw := fmt.Sprintf("fxdl%d", id), fmt.Sprintf("fxdw%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", lanNS).Run()
		_ = exec.Command("ip", "netns", "del", wanNS).Run()
		_ = exec.Command("ip", "link", "del", vl).Run()
		_ = exec.Command("ip", "link", "del", vw).Run()
	})
	// Host side 10.231.1.1 (where we listen) ↔ LAN client 10.231.1.2;
	// host side 10.231.2.1 ↔ WAN client 10.231.2.2, routed to 10.231.1.1
	// only. Nothing is routed beyond these links.
	for _, l := range []struct{ ns, veth, host, peer string }{{lanNS, vl, "10.231.1.1", "10.231.1.2"}, {wanNS, vw, "10.231.2.1", "10.231.2.2"}} {
		run("netns", "add", l.ns)
		run("link", "add", l.veth, "type", "veth", "peer", "name", "eth0", "netns", l.ns)
		run("addr", "add", l.host+"/30", "dev", l.veth)
		run("link", "set", l.veth, "up")
		run("-n", l.ns, "addr", "add", l.peer+"/30", "dev", "eth0")
		run("-n", l.ns, "link", "set", "eth0", "up")
		run("-n", l.ns, "link", "set", "lo", "up")
		run("-n", l.ns, "route", "add", "10.231.1.1/32", "via", l.host)
	}
	cfg := baseConfig()
	cfg.LANNetworks = lanNets("10.231.1.0/30")
	cfg.SecondaryACL = lanNets("10.231.1.0/30")
	r := start(t, cfg, testZone(1), "10.231.1.1:0")
	ask := func(ns string, args ...string) string {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "dig", "+time=2", "+tries=1", "+short", "@10.231.1.1", "-p", r.port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig from %s %v: %v\n%s", ns, args, err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		name string
		ns   string
		args []string
		want string
	}{
		{"lan sees the private address", lanNS, []string{"web.acme.cloud.internal", "A"}, "10.20.0.5\n"},
		{"wan sees the public address", wanNS, []string{"web.acme.cloud.internal", "A"}, "203.0.113.7\n"},
		{"lan over tcp", lanNS, []string{"+tcp", "web.acme.cloud.internal", "A"}, "10.20.0.5\n"},
		{"wan over tcp", wanNS, []string{"+tcp", "web.acme.cloud.internal", "A"}, "203.0.113.7\n"},
		{"lan ptr", lanNS, []string{"-x", "10.20.0.5"}, "web.acme.cloud.internal.\n"},
		{"wan gets no ptr", wanNS, []string{"-x", "10.20.0.5"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ask(tc.ns, tc.args...); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if out := ask(wanNS, "cloud.internal", "AXFR"); !containsAll(out, "Transfer failed") {
		t.Errorf("AXFR from the WAN namespace: %s", out)
	}
	if out := ask(lanNS, "cloud.internal", "AXFR"); !containsAll(out, "10.20.0.5") {
		t.Errorf("AXFR from the secondary's namespace: %s", out)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
