package dhcpd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/sys/unix"

	"github.com/fibrixcloud/fibrix/provisioner/dhcpd"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// need skips (or, under CI, fails) when a tool is missing.
func need(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err == nil {
			return filepath.Join(dir, tool)
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: apt-get install %s", tool, pkg)
	}
	t.Skipf("%s not found: apt-get install %s", tool, pkg)
	return ""
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("network namespace tests need root")
	}
	t.Skip("network namespace tests need root")
}

var nsSeq atomic.Int64

// lab is two network namespaces the test creates and deletes: the server
// side holds vs (10.213.0.1/24), the client side vc (10.213.0.2/24, the
// address perfdhcp relays from), joined by a veth pair. Nothing routes out.
type lab struct {
	srv, cli string
	ip       string
}

func newLab(t *testing.T) lab {
	t.Helper()
	needRoot(t)
	r := lab{ip: need(t, "ip", "iproute2")}
	id := fmt.Sprintf("%d-%d", os.Getpid(), nsSeq.Add(1))
	r.srv, r.cli = "fx-dhcp-s-"+id, "fx-dhcp-c-"+id
	r.run(t, "netns", "add", r.srv)
	t.Cleanup(func() { _ = exec.Command(r.ip, "netns", "del", r.srv).Run() })
	r.run(t, "netns", "add", r.cli)
	t.Cleanup(func() { _ = exec.Command(r.ip, "netns", "del", r.cli).Run() })
	r.run(t, "-n", r.srv, "link", "set", "lo", "up")
	r.run(t, "-n", r.cli, "link", "set", "lo", "up")
	r.run(t, "-n", r.srv, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", r.cli)
	r.run(t, "-n", r.srv, "addr", "add", "10.213.0.1/24", "dev", "vs")
	r.run(t, "-n", r.cli, "addr", "add", "10.213.0.2/24", "dev", "vc")
	r.run(t, "-n", r.cli, "link", "set", "vc", "address", "52:54:00:aa:bb:01")
	r.run(t, "-n", r.srv, "link", "set", "vs", "up")
	r.run(t, "-n", r.cli, "link", "set", "vc", "up")
	return r
}

func (r lab) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(r.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on an OS thread switched into the named namespace.
// Sockets belong to the namespace they are opened in, so a socket opened
// here keeps working from any goroutine afterwards; the thread itself is
// never unlocked, so the runtime discards it instead of reusing it in the
// wrong namespace. This keeps the server in the test process (its store can
// be inspected and it can be restarted) without re-executing the binary.
func inNetns(ns string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

func openSQLite(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// startServer runs a server on vs in the server namespace until the
// returned stop is called (or the test ends).
func startServer(t *testing.T, r lab, st *store.Store) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := dhcpd.New(ctx, dhcpd.Config{Interface: "vs", ServerIP: netip.MustParseAddr("10.213.0.1"), HTTPBootURL: bootURL}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.PacketConn
	if err := inNetns(r.srv, func() (err error) { conn, err = dhcpd.Listen("vs"); return err }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("serve did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func leaseOf(t *testing.T, st *store.Store, subnetID, mac string) string {
	t.Helper()
	leases, err := st.ListLeases(context.Background(), subnetID)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.MAC == mac {
			return l.IP.String()
		}
	}
	return ""
}

// TestRealClients runs DORA over a veth pair between two namespaces: with
// nclient4 (plain and PXE), with ISC dhclient, and, after a server restart
// on the same SQLite file, with busybox udhcpc, which must get the address
// dhclient got.
func TestRealClients(t *testing.T) {
	r := newLab(t)
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "fibrix.db")
	st := openSQLite(t, dbPath)
	sn, err := st.CreateBootSubnet(ctx, store.Actor{Email: "staff@example.com"}, store.BootSubnetInput{Name: "rack", CIDR: "10.213.0.0/24",
		Gateway: "10.213.0.1", DNSServers: []string{"10.213.0.1"}, DynamicStart: "10.213.0.10", DynamicEnd: "10.213.0.200", LeaseSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	stop := startServer(t, r, st)

	t.Run("nclient4", func(t *testing.T) {
		var plain, again, boot *nclient4.Lease
		err := inNetns(r.cli, func() error {
			c, err := nclient4.New("vc", nclient4.WithHWAddr(mac(0x21)), nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if plain, err = c.Request(ctx); err != nil {
				return fmt.Errorf("first DORA: %w", err)
			}
			if again, err = c.Request(ctx); err != nil {
				return fmt.Errorf("second DORA: %w", err)
			}
			pc, err := nclient4.New("vc", nclient4.WithHWAddr(mac(0x22)), nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
			if err != nil {
				return err
			}
			defer pc.Close()
			boot, err = pc.Request(ctx, pxe(iana.INTEL_X86PC)...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := plain.ACK.YourIPAddr.String(); got != "10.213.0.10" || again.ACK.YourIPAddr.String() != got {
			t.Errorf("DORA gave %s, then %s; want 10.213.0.10 twice", got, again.ACK.YourIPAddr)
		}
		if ip := leaseOf(t, st, sn.ID, mac(0x21).String()); ip != "10.213.0.10" {
			t.Errorf("lease in the database = %q", ip)
		}
		if boot.ACK.BootFileName != dhcpd.BIOSBootFile || boot.ACK.ServerIPAddr.String() != "10.213.0.1" || boot.ACK.BootFileNameOption() != dhcpd.BIOSBootFile {
			t.Errorf("PXE ACK: file %q siaddr %s option 67 %q", boot.ACK.BootFileName, boot.ACK.ServerIPAddr, boot.ACK.BootFileNameOption())
		}
	})

	vcMAC := "52:54:00:aa:bb:01"
	var first string
	t.Run("dhclient", func(t *testing.T) {
		bin := need(t, "dhclient", "isc-dhcp-client")
		dir := t.TempDir()
		first = runClient(t, r, `bound to (\S+)`, bin, "-d", "-v", "-1", "-sf", "/bin/true",
			"-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "vc")
		if ip := leaseOf(t, st, sn.ID, vcMAC); ip != first || first == "" {
			t.Errorf("dhclient bound to %q, the database holds %q", first, ip)
		}
	})

	// Restart: a new store handle on the same file, a new server.
	stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openSQLite(t, dbPath)
	t.Cleanup(func() { _ = st.Close() })
	startServer(t, r, st)

	t.Run("udhcpc after restart", func(t *testing.T) {
		if first == "" {
			t.Skip("dhclient got no address")
		}
		bin := need(t, "udhcpc", "udhcpc")
		got := runClient(t, r, `lease of (\S+) obtained`, bin, "-f", "-q", "-n", "-i", "vc", "-s", "/bin/true", "-t", "5", "-T", "1")
		if got != first {
			t.Errorf("after a restart the same MAC got %s, before %s", got, first)
		}
	})
}

// runClient runs a DHCP client in the client namespace until its output
// shows the bound address (pattern's first group), then stops it.
func runClient(t *testing.T, r lab, pattern, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.ip, append([]string{"netns", "exec", r.cli, bin}, args...)...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	re := regexp.MustCompile(pattern)
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			t.Logf("%s bound %s in %s", filepath.Base(bin), m[1], time.Since(start).Round(time.Millisecond))
			return m[1]
		}
	}
	t.Fatalf("%s never bound (%v):\n%s", filepath.Base(bin), errors.Join(sc.Err(), ctx.Err()), strings.Join(lines, "\n"))
	return ""
}

// TestPerfdhcp drives the server with Kea's perfdhcp (a relay, so the
// giaddr path) for a few seconds and checks nearly every exchange completes.
func TestPerfdhcp(t *testing.T) {
	bin := need(t, "perfdhcp", "kea-admin")
	r := newLab(t)
	ctx := context.Background()
	st := openSQLite(t, filepath.Join(t.TempDir(), "fibrix.db"))
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CreateBootSubnet(ctx, store.Actor{Email: "staff@example.com"}, store.BootSubnetInput{Name: "rack", CIDR: "10.213.0.0/16",
		Gateway: "10.213.0.1", DynamicStart: "10.213.1.0", DynamicEnd: "10.213.250.255"}); err != nil {
		t.Fatal(err)
	}
	r.run(t, "-n", r.cli, "addr", "flush", "dev", "vc")
	r.run(t, "-n", r.cli, "addr", "add", "10.213.0.2/16", "dev", "vc")
	r.run(t, "-n", r.srv, "addr", "flush", "dev", "vs")
	r.run(t, "-n", r.srv, "addr", "add", "10.213.0.1/16", "dev", "vs")
	startServer(t, r, st)
	seconds, rate := "3", "200"
	if s := os.Getenv("FIBRIX_PERFDHCP_SECONDS"); s != "" {
		seconds, rate = s, os.Getenv("FIBRIX_PERFDHCP_RATE")
	}
	args := []string{"netns", "exec", r.cli, bin, "-4", "-l", "vc", "-r", rate, "-p", seconds, "-R", "1000"}
	out, err := exec.Command(r.ip, args...).CombinedOutput()
	t.Logf("perfdhcp %s\n%s", strings.Join(args[3:], " "), out)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	sent, recv := perfCounts(string(out))
	if len(sent) != 2 || len(recv) != 2 {
		t.Fatalf("could not read perfdhcp's counts (sent %v, received %v)", sent, recv)
	}
	for i, ex := range []string{"DISCOVER-OFFER", "REQUEST-ACK"} {
		if sent[i] == 0 || float64(recv[i]) < 0.97*float64(sent[i]) {
			t.Errorf("%s: sent %d, received %d", ex, sent[i], recv[i])
		}
	}
}

func perfCounts(out string) (sent, recv []int) {
	for _, line := range strings.Split(out, "\n") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "sent packets: %d", &n); err == nil {
			sent = append(sent, n)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "received packets: %d", &n); err == nil {
			recv = append(recv, n)
		}
	}
	return sent, recv
}
