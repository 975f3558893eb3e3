package forwarder_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/forwarder"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestSuspensionCutsOpenRelays runs the forwarder on the real routing table
// (SQLite) in front of a "VM" on 127.0.0.2: a TCP relay through a port
// forward and a streaming HTTP response are open when staff suspend the
// tenant; both end within seconds, new connections are refused, and lifting
// the suspension brings the routes back.
func TestSuspensionCutsOpenRelays(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	staff := store.Actor{Email: "staff@example.com"}
	img, err := st.CreateImage(ctx, staff, store.ImageInput{Name: "debian-12", OS: "Debian", Version: "12",
		SourceURL: "https://images.example.com/debian-12.qcow2", Checksum: "sha256:" + strings.Repeat("1", 64), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.CreateHost(ctx, staff, store.HostInput{Name: "kvm-1", URI: "test:///default"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordHostFacts(ctx, h.ID, store.Facts{CPUModel: "test", Cores: 64, MemoryMiB: 1 << 16, DiskGiB: 1 << 12, DiskFreeGiB: 1 << 12}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lo", CIDR: "127.0.0.0/24", Gateway: "127.0.0.1",
		RangeStart: "127.0.0.2", RangeEnd: "127.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	ten, u, err := st.SignUp(ctx, store.Actor{}, "acme", "acme@example.com", "hash")
	if err != nil {
		t.Fatal(err)
	}
	owner := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.AddSSHKey(ctx, owner, ten.ID, "laptop", string(ssh.MarshalAuthorizedKey(sp)))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := st.CreateVM(ctx, owner, ten.ID, store.VMOrder{Name: "web", Plan: "nano", Image: img.Name, SSHKeys: []string{key.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AllocateIP(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := st.ClaimVM(ctx, "worker", time.Minute); err != nil || !ok || got.ID != vm.ID {
		t.Fatalf("claim: %v %v %v", got.ID, ok, err)
	}
	if err := st.SetVMState(ctx, vm.ID, "worker", store.VMRunning, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishWork(ctx, vm.ID, "worker", true, 0); err != nil {
		t.Fatal(err)
	}
	d, err := st.GetVM(ctx, ten.ID, vm.ID)
	if err != nil || d.IP != "127.0.0.2" {
		t.Fatalf("vm address %q, want 127.0.0.2: %v", d.IP, err)
	}

	// The VM: an echo service and a web site that streams until the
	// client goes.
	echo := echoVM(t, "127.0.0.2", "web")
	webLn, err := net.Listen("tcp", "127.0.0.2:80")
	if err != nil {
		msg := fmt.Sprintf("the VM's web site needs port 80 on 127.0.0.2 (run as root): %v", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "streaming")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})}
	go func() { _ = web.Serve(webLn) }()
	t.Cleanup(func() { _ = web.Close() })

	public := freePort(t)
	if _, err := st.SetVMExposure(ctx, owner, ten.ID, vm.ID, ptr(true), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreatePortForward(ctx, owner, ten.ID, store.PortForwardInput{VMID: vm.ID, PublicPort: public, TargetPort: int(echo.Port())}, public, public); err != nil {
		t.Fatal(err)
	}

	f, err := forwarder.New(forwarder.Config{Zone: "cloud.internal", PortMin: public, PortMax: public, PortHost: "127.0.0.1", Poll: 100 * time.Millisecond}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	hl := listen(t, "127.0.0.1:0")
	done := make(chan struct{}, 2)
	go func() { _ = f.Serve(sctx); done <- struct{}{} }()
	go func() { _ = f.HTTP().Serve(sctx, hl); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	relayAddr := fmt.Sprintf("127.0.0.1:%d", public)
	waitFor(t, "the port forward to open", func() bool {
		c, err := net.DialTimeout("tcp", relayAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	openRelay := func() *lineConn {
		t.Helper()
		c, err := dialLine(t, relayAddr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.say("ping"); got != "web:ping" {
			t.Fatalf("through the port forward: %q %v", got, err)
		}
		return c
	}
	openStream := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+hl.Addr().String()+"/", nil)
		req.Host = "web.acme.cloud.internal"
		return http.DefaultClient.Do(req)
	}
	relay := openRelay()
	resp, err := openStream()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("published site: %v %v", resp, err)
	}
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); line != "streaming\n" {
		t.Fatalf("site said %q %v", line, err)
	}
	streamEnded := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, body); streamEnded <- err }()

	suspended := time.Now()
	if err := st.SuspendTenant(ctx, staff, ten.ID, "unpaid invoice"); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := relay.r.ReadByte(); err == nil || os.IsTimeout(err) {
		t.Fatalf("the open relay outlived the suspension: read %v %v", n, err)
	}
	select {
	case <-streamEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the streaming response outlived the suspension by 10 s")
	}
	t.Logf("open connections ended %v after the suspension", time.Since(suspended).Round(time.Millisecond))
	if c, err := dialLine(t, relayAddr); err == nil {
		if got, err := c.say("again"); err == nil {
			t.Errorf("a suspended tenant's port forward still relays: %q", got)
		}
	}
	if resp, err := openStream(); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a suspended tenant's site: %v %v, want 404", resp, err)
	}

	if err := st.UnsuspendTenant(ctx, staff, ten.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the port forward to come back", func() bool {
		c, err := dialLine(t, relayAddr)
		if err != nil {
			return false
		}
		got, _ := c.say("back")
		c.Close()
		return got == "web:back"
	})
	resp, err = openStream()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("site after the suspension was lifted: %v %v", resp, err)
	}
	resp.Body.Close()
}

func ptr[T any](v T) *T { return &v }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
