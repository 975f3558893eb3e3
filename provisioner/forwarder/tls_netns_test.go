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
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fibrixcloud/fibrix/provisioner/forwarder"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// vmNetns is a network namespace standing in for a VM's host: one end of a
// veth pair stays in the test's namespace (hostIP), the other sits in the
// namespace (vmIP), both in one /30, so traffic goes only between the two
// ends. Both are deleted when the test ends.
type vmNetns struct {
	name           string
	hostIP, vmIP   netip.Addr
	hostIf, nsLink string
}

func newVMNetns(t *testing.T) vmNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("network namespace tests need root")
		}
		t.Skip("network namespace tests need root")
	}
	need(t, "ip", "iproute2")
	// One /30 per test process in 10.232.0.0/16, so parallel runs of the
	// package do not collide.
	id := os.Getpid() % 16384
	base := [4]byte{10, 232, byte(id * 4 >> 8), byte(id * 4 & 0xff)}
	n := vmNetns{name: fmt.Sprintf("fxfw%d", id), hostIf: fmt.Sprintf("fxfwh%d", id), nsLink: fmt.Sprintf("fxfwn%d", id)}
	base[3]++
	n.hostIP = netip.AddrFrom4(base)
	base[3]++
	n.vmIP = netip.AddrFrom4(base)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", n.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	ip("link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsLink, "netns", n.name)
	// Deleting the namespace removes the pair; this covers a failure between.
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.hostIf).Run() })
	ip("-n", n.name, "link", "set", "lo", "up")
	ip("addr", "add", n.hostIP.String()+"/30", "dev", n.hostIf)
	ip("-n", n.name, "addr", "add", n.vmIP.String()+"/30", "dev", n.nsLink)
	ip("link", "set", n.hostIf, "up")
	ip("-n", n.name, "link", "set", n.nsLink, "up")
	return n
}

// listen opens a TCP listener inside the namespace. As in
// provisioner/dhcpd's tests, a goroutine locks its OS thread and switches it
// into the namespace; the socket stays in that namespace when used from any
// goroutine, and the thread is never unlocked, so the runtime discards it
// rather than reuse it in the wrong namespace.
func (n vmNetns) listen(t *testing.T, port int) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", n.name))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", n.name, err)}
			return
		}
		ln, err := net.Listen("tcp", netip.AddrPortFrom(n.vmIP, uint16(port)).String())
		done <- result{ln, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln
}

// netnsTLSVM serves TLS inside the namespace with a self-signed certificate
// of its own (returned as PEM): it greets with the address the connection
// came from, then answers one line.
func netnsTLSVM(t *testing.T, ln net.Listener, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: cn, Organization: []string{"Customer VM in a namespace"}},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(15 * time.Second))
				tc := tls.Server(c, cfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				fmt.Fprintf(tc, "hello from %s, via %s\n", cn, c.RemoteAddr())
				line, err := bufio.NewReader(tc).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(tc, "%s got %q\n", cn, strings.TrimSpace(line))
				tc.Close()
			}()
		}
	}()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestTLSPassthroughToNetns sends TLS through the forwarder to a server in
// another network namespace, reached over a veth pair: openssl must see the
// server's own certificate (the forwarder does not terminate TLS) and data
// must flow both ways.
func TestTLSPassthroughToNetns(t *testing.T) {
	need(t, "openssl", "openssl")
	ns := newVMNetns(t)
	const cn = "secure.acme.cloud.internal"
	ln := ns.listen(t, 0)
	cert := netnsTLSVM(t, ln, cn)
	src := &fakeRoutes{r: store.Routes{Version: 1, TLS: map[string]store.TLSTarget{
		cn: {Addr: ln.Addr().(*net.TCPAddr).AddrPort()},
	}}}
	s := start(t, forwarder.Config{}, src)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-ign_eof", "-connect", s.tlsAddr, "-servername", cn)
	cmd.Stdin = strings.NewReader("ping through the forwarder\n")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("openssl s_client did not finish: %v\n%s", err, out)
	}
	got := string(out)
	for what, want := range map[string]string{
		"the namespace server's certificate": cert,
		"its subject":                        "CN = " + cn,
		"its greeting over the veth pair":    fmt.Sprintf("hello from %s, via %s:", cn, ns.hostIP),
		"its answer to the client's line":    fmt.Sprintf("%s got %q", cn, "ping through the forwarder"),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%s not seen (want %q):\n%s", what, want, got)
		}
	}
}
