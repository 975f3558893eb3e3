package forwarder_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/forwarder"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// fakeRoutes is a routing table the test edits while the forwarder runs.
type fakeRoutes struct {
	mu sync.Mutex
	r  store.Routes
}

func (f *fakeRoutes) ForwardRoutes(_ context.Context, zone string) (store.Routes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if zone != "cloud.internal" {
		return store.Routes{}, fmt.Errorf("zone %q", zone)
	}
	return f.r, nil
}

func (f *fakeRoutes) ForwardRoutesVersion(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r.Version, nil
}

func (f *fakeRoutes) set(fn func(r *store.Routes)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := store.Routes{Version: f.r.Version + 1, HTTP: map[string]netip.AddrPort{}, TLS: map[string]store.TLSTarget{}, TCP: map[int]netip.AddrPort{}}
	for k, v := range f.r.HTTP {
		r.HTTP[k] = v
	}
	for k, v := range f.r.TLS {
		r.TLS[k] = v
	}
	for k, v := range f.r.TCP {
		r.TCP[k] = v
	}
	fn(&r)
	f.r = r
}

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: install Debian package %s", tool, pkg)
		}
		t.Skipf("%s missing: install Debian package %s", tool, pkg)
	}
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func ap(ln net.Listener) netip.AddrPort { return ln.Addr().(*net.TCPAddr).AddrPort() }

// httpVM is a web server standing in for a VM on its own loopback address.
func httpVM(t *testing.T, ip, name string) netip.AddrPort {
	ln := listen(t, ip+":0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "vm=%s host=%s xff=%s proto=%s xhost=%s\n", name, r.Host,
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ap(ln)
}

// echoVM echoes every line back, prefixed with its name.
func echoVM(t *testing.T, ip, name string) netip.AddrPort {
	ln := listen(t, ip+":0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s:%s\n", name, sc.Text())
				}
			}()
		}
	}()
	return ap(ln)
}

type started struct {
	f                 *forwarder.Forwarder
	src               *fakeRoutes
	httpAddr, tlsAddr string
}

func start(t *testing.T, cfg forwarder.Config, src *fakeRoutes) started {
	t.Helper()
	cfg.Zone = "Cloud.Internal."
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	cfg.PortHost = "127.0.0.1"
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := forwarder.New(cfg, src, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hl, tl := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	var wg sync.WaitGroup
	wg.Go(func() { _ = f.Serve(ctx) })
	wg.Go(func() { _ = f.HTTP().Serve(ctx, hl) })
	wg.Go(func() { _ = f.TLS().Serve(ctx, tl) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitVersion(t, f, src)
	return started{f, src, hl.Addr().String(), tl.Addr().String()}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitVersion(t *testing.T, f *forwarder.Forwarder, src *fakeRoutes) {
	t.Helper()
	want, _ := src.ForwardRoutesVersion(context.Background())
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f.Version() == want {
			time.Sleep(20 * time.Millisecond) // let the port listeners follow
			return
		}
	}
	t.Fatalf("forwarder at version %d, want %d", f.Version(), want)
}

func curl(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10", "-w", "\nstatus=%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	body, status, _ := strings.Cut(string(out), "\nstatus=")
	return body, status
}

func TestHTTPHostRouting(t *testing.T) {
	need(t, "curl", "curl")
	web := httpVM(t, "127.0.0.2", "web")
	blog := httpVM(t, "127.0.0.3", "blog")
	src := &fakeRoutes{r: store.Routes{Version: 1, HTTP: map[string]netip.AddrPort{
		"web.acme.cloud.internal":    web,
		"blog.globex.cloud.internal": blog,
	}}}
	s := start(t, forwarder.Config{}, src)
	url := "http://" + s.httpAddr + "/"
	for _, tc := range []struct {
		name, host, status, want string
	}{
		{"web", "web.acme.cloud.internal", "200", "vm=web host=web.acme.cloud.internal xff=127.0.0.1 proto=http xhost=web.acme.cloud.internal"},
		{"upper case and port", "BLOG.Globex.cloud.internal:8080", "200", "vm=blog host=BLOG.Globex.cloud.internal:8080 xff=127.0.0.1"},
		{"unknown host", "nope.acme.cloud.internal", "404", "No site is published at nope.acme.cloud.internal"},
		// A VM that publishes HTTPS only is not reachable over HTTP.
		{"unexposed vm", "api.acme.cloud.internal", "404", "No site is published at api.acme.cloud.internal"},
		{"final dot", "web.acme.cloud.internal.", "200", "vm=web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, status := curl(t, "-H", "Host: "+tc.host, "-H", "X-Forwarded-For: 6.6.6.6", url)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("status %s body %q, want %s containing %q", status, body, tc.status, tc.want)
			}
		})
	}
}

// tlsVM is a TLS server standing in for a VM: its certificate names the VM,
// which proves the forwarder did not terminate TLS. With proxy set it
// expects a PROXY v2 header and greets with the client address it carried.
func tlsVM(t *testing.T, ip, cn string, proxy bool) netip.AddrPort {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Customer VM"}},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ln := listen(t, ip+":0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				from := "-"
				if proxy {
					src, err := readProxyV2(c)
					if err != nil {
						t.Errorf("vm %s: %v", cn, err)
						return
					}
					from = src.String()
				}
				tc := tls.Server(c, cfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				fmt.Fprintf(tc, "hello from %s, client %s\n", cn, from)
				tc.Close()
			}()
		}
	}()
	return ap(ln)
}

// readProxyV2 parses a PROXY protocol v2 header as a VM's server would.
func readProxyV2(r io.Reader) (netip.AddrPort, error) {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return netip.AddrPort{}, err
	}
	if string(hdr[:12]) != "\r\n\r\n\x00\r\nQUIT\n" || hdr[12] != 0x21 {
		return netip.AddrPort{}, fmt.Errorf("not a PROXY v2 header: % x", hdr)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[14:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return netip.AddrPort{}, err
	}
	switch hdr[13] {
	case 0x11:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:])), nil
	case 0x21:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:])), nil
	}
	return netip.AddrPort{}, fmt.Errorf("family %#x", hdr[13])
}

func sClient(t *testing.T, addr string, args ...string) string {
	t.Helper()
	// -ign_eof: read until the VM closes, so its greeting is seen.
	cmd := exec.Command("openssl", append([]string{"s_client", "-ign_eof", "-connect", addr}, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput() // refusals exit non-zero
	return string(out)
}

func TestTLSPassthrough(t *testing.T) {
	need(t, "openssl", "openssl")
	web := tlsVM(t, "127.0.0.2", "web.acme.cloud.internal", false)
	shop := tlsVM(t, "127.0.0.3", "shop.acme.cloud.internal", true)
	src := &fakeRoutes{r: store.Routes{Version: 1, TLS: map[string]store.TLSTarget{
		"web.acme.cloud.internal":  {Addr: web},
		"shop.acme.cloud.internal": {Addr: shop, ProxyProtocol: true},
	}}}
	s := start(t, forwarder.Config{}, src)

	out := sClient(t, s.tlsAddr, "-servername", "web.acme.cloud.internal")
	if !strings.Contains(out, "CN = web.acme.cloud.internal") || !strings.Contains(out, "O = Customer VM") ||
		!strings.Contains(out, "hello from web.acme.cloud.internal, client -") {
		t.Errorf("web: the VM's own certificate and greeting not seen:\n%s", out)
	}
	out = sClient(t, s.tlsAddr, "-servername", "SHOP.acme.cloud.internal")
	if !strings.Contains(out, "CN = shop.acme.cloud.internal") || !strings.Contains(out, "client 127.0.0.1:") {
		t.Errorf("shop: PROXY v2 client address not seen by the VM:\n%s", out)
	}
	for name, args := range map[string][]string{
		"no sni":      {"-noservername"},
		"unknown sni": {"-servername", "nope.acme.cloud.internal"},
	} {
		t.Run(name, func(t *testing.T) {
			out := sClient(t, s.tlsAddr, args...)
			if !strings.Contains(out, "unrecognized name") || strings.Contains(out, "CN = ") {
				t.Errorf("want an unrecognized_name alert and no certificate:\n%s", out)
			}
		})
	}
	// The same through Go's client, checking the alert precisely.
	_, err := tls.Dial("tcp", s.tlsAddr, &tls.Config{ServerName: "nope.acme.cloud.internal", InsecureSkipVerify: true})
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Errorf("go client: %v, want an unrecognized name alert", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) (*lineConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{c, bufio.NewReader(c)}, nil
}

// say sends a line and returns the answer, or an error when the forwarder
// closed the connection.
func (c *lineConn) say(s string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(c, s); err != nil {
		return "", err
	}
	l, err := c.r.ReadString('\n')
	return strings.TrimSpace(l), err
}

func TestPortForwardLiveUpdates(t *testing.T) {
	a := echoVM(t, "127.0.0.2", "a")
	b := echoVM(t, "127.0.0.3", "b")
	pa, pb := freePort(t), freePort(t)
	lo, hi := min(pa, pb), max(pa, pb)
	src := &fakeRoutes{r: store.Routes{Version: 1, TCP: map[int]netip.AddrPort{pa: a}}}
	web := httpVM(t, "127.0.0.4", "web")
	src.r.HTTP = map[string]netip.AddrPort{"old.acme.cloud.internal": web}
	s := start(t, forwarder.Config{PortMin: lo, PortMax: hi}, src)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }

	open, err := dialLine(t, addr(pa))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open.say("ping"); got != "a:ping" {
		t.Fatalf("through port %d: %q %v", pa, got, err)
	}
	// Remove the open connection's route and add another, live.
	src.set(func(r *store.Routes) {
		delete(r.TCP, pa)
		r.TCP[pb] = b
		delete(r.HTTP, "old.acme.cloud.internal")
		r.HTTP["new.acme.cloud.internal"] = web
	})
	waitVersion(t, s.f, src)
	if got, err := open.say("still there"); got != "a:still there" {
		t.Errorf("open connection after its route went: %q %v", got, err)
	}
	c, err := dialLine(t, addr(pb))
	if err != nil {
		t.Fatalf("new route: %v", err)
	}
	if got, err := c.say("hi"); got != "b:hi" {
		t.Errorf("new route: %q %v", got, err)
	}
	if c, err := dialLine(t, addr(pa)); err == nil {
		if got, err := c.say("x"); err == nil {
			t.Errorf("removed route still forwards: %q", got)
		}
	}
	resp, err := http.Get("http://" + s.httpAddr + "/") // Host is the forwarder's address: not routed
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("no host: %v %v", resp, err)
	}
	for host, want := range map[string]int{"new.acme.cloud.internal": 200, "old.acme.cloud.internal": 404} {
		req, _ := http.NewRequest("GET", "http://"+s.httpAddr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			t.Errorf("%s: %v %v, want %d", host, resp, err, want)
		}
	}
	// Ports outside the staff range are never opened.
	outside := freePort(t)
	for outside >= lo && outside <= hi {
		outside = freePort(t)
	}
	src.set(func(r *store.Routes) { r.TCP[outside] = a })
	waitVersion(t, s.f, src)
	if c, err := net.DialTimeout("tcp", addr(outside), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d outside %d–%d was opened", outside, lo, hi)
	}
}

func TestConnectionCap(t *testing.T) {
	a := echoVM(t, "127.0.0.2", "a")
	p := freePort(t)
	src := &fakeRoutes{r: store.Routes{Version: 1, TCP: map[int]netip.AddrPort{p: a}}}
	s := start(t, forwarder.Config{PortMin: p, PortMax: p, MaxConnsPerVM: 3}, src)
	_ = s
	var held []*lineConn
	for i := range 3 {
		c, err := dialLine(t, fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.say(fmt.Sprint(i)); got != fmt.Sprintf("a:%d", i) {
			t.Fatalf("connection %d: %q %v", i, got, err)
		}
		held = append(held, c)
	}
	c, err := dialLine(t, fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.say("one too many"); err == nil {
		t.Fatalf("connection over the cap answered %q", got)
	}
	held[0].Close()
	time.Sleep(100 * time.Millisecond)
	c, err = dialLine(t, fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.say("after one left"); got != "a:after one left" {
		t.Errorf("a freed slot is not reused: %q %v", got, err)
	}
}

func TestSlowClientsAreCut(t *testing.T) {
	web := httpVM(t, "127.0.0.2", "web")
	src := &fakeRoutes{r: store.Routes{Version: 1, HTTP: map[string]netip.AddrPort{"web.acme.cloud.internal": web}}}
	const timeout = 300 * time.Millisecond
	s := start(t, forwarder.Config{HandshakeTimeout: timeout}, src)
	for name, tc := range map[string]struct{ addr, send string }{
		"http request line only": {s.httpAddr, "GET / HTTP/1.1\r\n"},
		"tls partial hello":      {s.tlsAddr, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
	} {
		t.Run(name, func(t *testing.T) {
			// The server's clock starts when it accepts, after this one.
			start := time.Now()
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			// The server must close the connection: our own read deadline
			// firing first (an error here) means it never did.
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.Copy(io.Discard, c)
			if took := time.Since(start); err != nil || took < timeout {
				t.Errorf("connection ended after %v (err %v), want the server to cut it after %v", took, err, timeout)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	a := echoVM(t, "127.0.0.2", "a")
	p := freePort(t)
	src := &fakeRoutes{r: store.Routes{Version: 1, TCP: map[int]netip.AddrPort{p: a}}}
	const idle = 200 * time.Millisecond
	start(t, forwarder.Config{PortMin: p, PortMax: p, IdleTimeout: idle}, src)
	c, err := dialLine(t, fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatal(err)
	}
	// Busy for longer than the idle timeout: kept.
	for i := range 8 {
		if got, err := c.say("x"); got != "a:x" {
			t.Fatalf("busy connection cut at %d: %q %v", i, got, err)
		}
		time.Sleep(idle / 2)
	}
	begin := time.Now()
	// EOF is the server closing it; our own deadline (an error) means it never did.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = c.r.ReadString('\n')
	if took := time.Since(begin); err != io.EOF || took < idle*3/4 {
		t.Errorf("idle connection ended after %v with %v, want the server to close it after %v", took, err, idle)
	}
}
