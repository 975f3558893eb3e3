package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/gateway"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestJump drives the gateway with the real OpenSSH client into a real sshd:
// the customer's own key reaches their VM end to end; every other target,
// key and tenant is refused with the reason the customer sees, and audited.
func TestJump(t *testing.T) {
	l := newLab(t, gateway.Config{})
	port := l.vmPortArg()
	type audited struct{ action, result, detail string }
	cases := []struct {
		name   string
		key    string
		args   []string
		status int
		stdout string // substring
		stderr string // substring
		audit  []audited
	}{
		{
			name: "own vm by full name", key: "acme",
			args:   []string{"-J", "acme@gw", "-p", port, "root@web.acme.cloud.internal", "hostname; echo $SSH_CONNECTION"},
			stdout: " 127.0.0.2 " + port,
			audit: []audited{{gateway.ActionLogin, store.ResultSuccess, "user acme"},
				{gateway.ActionChannel, store.ResultSuccess, "relay to 127.0.0.2:" + port + " (asked for web.acme.cloud.internal:" + port + ")"}},
		},
		{
			name: "own vm by bare name", key: "acme",
			args:   []string{"-J", "acme@gw", "-p", port, "root@web", "echo $SSH_CONNECTION"},
			stdout: " 127.0.0.2 " + port,
			audit:  []audited{{gateway.ActionChannel, store.ResultSuccess, "(asked for web:" + port + ")"}},
		},
		{
			name: "own vm by address", key: "acme",
			args:   []string{"-J", "acme@gw", "-p", port, "root@127.0.0.2", "echo $SSH_CONNECTION"},
			stdout: " 127.0.0.2 " + port,
			audit:  []audited{{gateway.ActionChannel, store.ResultSuccess, "(asked for 127.0.0.2:" + port + ")"}},
		},
		{
			name: "key of another tenant", key: "globex",
			args: []string{"-J", "acme@gw", "-p", port, "root@web.acme.cloud.internal", "true"}, status: 255,
			stderr: "Permission denied (publickey)",
			audit:  []audited{{gateway.ActionLogin, store.ResultFailure, `is not a key of tenant "acme"`}},
		},
		{
			name: "unknown key", key: "unknown",
			args: []string{"-J", "acme@gw", "-p", port, "root@web.acme.cloud.internal", "true"}, status: 255,
			stderr: "Permission denied (publickey)",
		},
		{
			name: "own key as another tenant's user", key: "acme",
			args: []string{"-J", "globex@gw", "-p", port, "root@db.globex.cloud.internal", "true"}, status: 255,
			stderr: "Permission denied (publickey)",
			audit:  []audited{{gateway.ActionLogin, store.ResultFailure, `is not a key of tenant "globex"`}},
		},
		{
			name: "unknown tenant", key: "acme",
			args: []string{"-J", "nobody@gw", "-p", port, "root@web", "true"}, status: 255,
			stderr: "Permission denied (publickey)",
			audit:  []audited{{gateway.ActionLogin, store.ResultFailure, `is not a key of tenant "nobody"`}},
		},
		{
			name: "suspended tenant", key: "initech",
			args: []string{"-J", "initech@gw", "-p", port, "root@web", "true"}, status: 255,
			stderr: "Fibrix: this account is suspended: unpaid invoice",
			audit:  []audited{{gateway.ActionLogin, store.ResultFailure, `user "initech": this account is suspended: unpaid invoice`}},
		},
		{
			name: "password", key: "acme",
			args: []string{"-o", "PreferredAuthentications=password", "acme@gw", "true"}, status: 255,
			stderr: "Permission denied (publickey)",
			audit:  []audited{{gateway.ActionLogin, store.ResultFailure, `user "acme": no acceptable key offered`}},
		},
		{
			name: "another tenant's vm", key: "acme",
			args: []string{"-J", "acme@gw", "-p", port, "root@db.globex.cloud.internal", "true"}, status: 255,
			stderr: `administratively prohibited: Fibrix: "db.globex.cloud.internal" is not one of your VMs`,
			audit:  []audited{{gateway.ActionChannel, store.ResultFailure, `"db.globex.cloud.internal" is not one of your VMs`}},
		},
		{
			name: "another tenant's vm by address", key: "acme",
			args: []string{"-J", "acme@gw", "-p", port, "root@127.0.0.3", "true"}, status: 255,
			stderr: `Fibrix: "127.0.0.3" is not one of your VMs`,
		},
		{
			name: "arbitrary host", key: "acme",
			args: []string{"-J", "acme@gw", "-p", port, "root@127.0.0.5", "true"}, status: 255,
			stderr: `Fibrix: "127.0.0.5" is not one of your VMs`,
		},
		{
			name: "another port of own vm", key: "acme",
			args: []string{"-J", "acme@gw", "-p", "80", "root@web.acme.cloud.internal", "true"}, status: 255,
			stderr: "Fibrix: only port " + port + " of your VMs can be reached through the gateway",
			audit:  []audited{{gateway.ActionChannel, store.ResultFailure, "only port " + port}},
		},
		{
			name: "shell on the gateway", key: "acme",
			args: []string{"acme@gw"}, status: 255,
			stderr: "administratively prohibited: Fibrix: session channels are refused",
			audit:  []audited{{gateway.ActionChannel, store.ResultFailure, "session channels are refused"}},
		},
		{
			name: "command on the gateway", key: "acme",
			args: []string{"acme@gw", "id"}, status: 255,
			stderr: "Fibrix: session channels are refused",
		},
		{
			name: "remote forwarding", key: "acme",
			args: []string{"-N", "-o", "ExitOnForwardFailure=yes", "-R", "8022:127.0.0.2:" + port, "acme@gw"}, status: 255,
			stderr: "remote port forwarding failed",
			audit:  []audited{{gateway.ActionChannel, store.ResultFailure, "remote forwarding (tcpip-forward) is not offered"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Now()
			stdout, stderr, status := l.ssh(t, tc.key, []byte{}, tc.args...)
			t.Logf("exit %d after %s, stdout %q, stderr %q", status, time.Since(t0), stdout, stderr)
			if status != tc.status || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("ssh %s: exit %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)\ngateway log:\n%s",
					strings.Join(tc.args, " "), status, tc.status, stdout, tc.stdout, stderr, tc.stderr, l.logs)
			}
			for _, want := range tc.audit {
				if !l.waitAudit(t, want.action, want.result, want.detail) {
					t.Errorf("no audit entry %s/%s with %q", want.action, want.result, want.detail)
				}
			}
		})
	}

	// Every audited entry carries the source address.
	entries, _, err := l.st.ListAudit(context.Background(), store.AuditFilter{Action: "gateway."}, store.Page{PerPage: store.MaxPerPage})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Error("no gateway audit entries")
	}
	for _, e := range entries {
		if e.SourceIP != "127.0.0.1" {
			t.Errorf("audit entry %s %q has source %q", e.Action, e.Detail, e.SourceIP)
		}
	}
}

// waitAudit polls for an entry: a refused login is recorded after the
// client has already gone.
func (l *lab) waitAudit(t testing.TB, action, result, detail string) bool {
	t.Helper()
	for range 50 {
		entries, _, err := l.st.ListAudit(context.Background(), store.AuditFilter{Action: action, Result: result}, store.Page{PerPage: store.MaxPerPage})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Detail, detail) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestHostKeyFingerprint checks the fingerprint shown to customers is the
// one OpenSSH reports, and that the key survives a restart.
func TestHostKeyFingerprint(t *testing.T) {
	keygen := need(t, "ssh-keygen", "openssh-client")
	pemKey, err := gateway.GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	gw1, err := gateway.New(gateway.Config{Zone: zone, HostKeyPEM: pemKey}, fakeStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw2, err := gateway.New(gateway.Config{Zone: zone, HostKeyPEM: pemKey}, fakeStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gw1.HostKeyFingerprint() != gw2.HostKeyFingerprint() {
		t.Fatal("the same stored key gave two fingerprints")
	}
	path := t.TempDir() + "/key.pub"
	if err := os.WriteFile(path, ssh.MarshalAuthorizedKey(gw1.HostKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(keygen, "-lf", path)
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	if f := strings.Fields(out); len(f) < 2 || f[1] != gw1.HostKeyFingerprint() {
		t.Errorf("ssh-keygen -lf says %q; we show %q", out, gw1.HostKeyFingerprint())
	}
	for name, cfg := range map[string]gateway.Config{
		"no key":      {Zone: zone},
		"garbage key": {Zone: zone, HostKeyPEM: []byte("not a key")},
		"no zone":     {HostKeyPEM: pemKey},
		"bad port":    {Zone: zone, HostKeyPEM: pemKey, TargetPort: 70000},
		"negative":    {Zone: zone, HostKeyPEM: pemKey, MaxConns: -1},
	} {
		if _, err := gateway.New(cfg, fakeStore{}, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestLimits checks that unauthenticated connections cannot pile up: per
// address caps, the handshake deadline and the failed-login window.
func TestLimits(t *testing.T) {
	l := newLab(t, gateway.Config{MaxConnsPerIP: 3, AuthFailuresPerIPPerMinute: 6, HandshakeTimeout: 2 * time.Second})
	addr := net.JoinHostPort("127.0.0.1", itoa(l.gwPort))

	// Three idle TCP connections fill the per-address cap; a fourth is
	// closed at once, without a version banner.
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		banner := make([]byte, 7)
		if _, err := c.Read(banner); err != nil || string(banner) != "SSH-2.0" {
			t.Fatalf("banner %q, %v", banner, err)
		}
	}
	if n := readAll(t, addr, time.Second); n != 0 {
		t.Errorf("over the per-address cap: got %d bytes, want the connection closed", n)
	}
	// The handshake deadline frees the slots.
	start := time.Now()
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1024)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		_ = c.Close()
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("idle unauthenticated connections held for %s", el)
	}

	// A connection that times out counts as a failed login: with three
	// more, the address is shut out even with a good key.
	for range 3 {
		if _, stderr, st := l.ssh(t, "unknown", []byte{}, "acme@gw", "true"); st != 255 || !strings.Contains(stderr, "Permission denied") {
			t.Fatalf("unknown key: exit %d, %s", st, stderr)
		}
	}
	time.Sleep(100 * time.Millisecond) // the failure is counted once the client has gone
	_, stderr, st := l.ssh(t, "acme", []byte{}, "-J", "acme@gw", "-p", l.vmPortArg(), "root@web", "true")
	if st != 255 || !strings.Contains(stderr, "closed") && !strings.Contains(stderr, "reset") {
		t.Errorf("after 6 failures: exit %d, stderr %q; want the connection closed", st, stderr)
	}
	if !strings.Contains(l.logs.String(), "failed logins from this address") {
		t.Errorf("gateway log lacks the refusal:\n%s", l.logs)
	}
}

// TestServeStopsOnCancel checks that cancelling Serve ends open relays.
func TestServeStopsOnCancel(t *testing.T) {
	l := newLab(t, gateway.Config{})
	cfg := &ssh.ClientConfig{User: "acme", HostKeyCallback: ssh.FixedHostKey(l.gw.HostKey()), Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(l.signers(t, "acme"))}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.gw.Serve(ctx, ln) }()
	c, err := ssh.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	up, err := c.Dial("tcp", "web:"+l.vmPortArg())
	if err != nil {
		t.Fatal(err)
	}
	banner := make([]byte, 7)
	if _, err := up.Read(banner); err != nil || string(banner) != "SSH-2.0" {
		t.Fatalf("vm banner through the relay: %q, %v", banner, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	_ = up.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := up.Read(make([]byte, 4096)); err == nil {
		// Drain what the VM had already sent; the next read must end.
		for err == nil {
			_, err = up.Read(make([]byte, 4096))
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Error("relay still open after Serve returned")
		}
	}
}

// signers gives a Go client the tenant's key.
func (l *lab) signers(t testing.TB, key string) func() ([]ssh.Signer, error) {
	b, err := os.ReadFile(l.keys[key])
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return func() ([]ssh.Signer, error) { return []ssh.Signer{s}, nil }
}

// TestOfferedKeyDoesNotAuthenticate checks pitfall 11: offering a tenant's
// key without proving it, then signing with another, grants nothing.
func TestOfferedKeyDoesNotAuthenticate(t *testing.T) {
	l := newLab(t, gateway.Config{})
	acme := l.signers(t, "acme")
	unknown := l.signers(t, "unknown")
	a, _ := acme()
	u, _ := unknown()
	// The Go client offers each key (a query) before signing; the acme key
	// here is offered through a signer that cannot sign.
	cfg := &ssh.ClientConfig{User: "acme", HostKeyCallback: ssh.FixedHostKey(l.gw.HostKey()),
		Auth: []ssh.AuthMethod{ssh.PublicKeys(offerOnly{a[0].PublicKey()}, u[0])}}
	if c, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(l.gwPort)), cfg); err == nil {
		_ = c.Close()
		t.Fatal("signed in with a key that was only offered")
	}
}

// offerOnly is a signer that knows a public key but cannot sign.
type offerOnly struct{ pub ssh.PublicKey }

func (o offerOnly) PublicKey() ssh.PublicKey { return o.pub }
func (o offerOnly) Sign(_ io.Reader, data []byte) (*ssh.Signature, error) {
	return &ssh.Signature{Format: o.pub.Type(), Blob: bytes.Repeat([]byte{1}, 64)}, nil
}

func TestLoginAuditNamesKey(t *testing.T) {
	l := newLab(t, gateway.Config{})
	if _, stderr, st := l.ssh(t, "acme", []byte{}, "-J", "acme@gw", "-p", l.vmPortArg(), "root@web", "true"); st != 0 {
		t.Fatalf("jump: exit %d: %s", st, stderr)
	}
	entries, _, err := l.st.ListAudit(context.Background(), store.AuditFilter{Action: gateway.ActionLogin}, store.Page{})
	if err != nil || len(entries) != 1 {
		t.Fatalf("login entries: %v, %v", entries, err)
	}
	e := entries[0]
	got := []string{e.Result, e.TargetType, e.TargetName, e.SourceIP}
	if diff := cmp.Diff([]string{store.ResultSuccess, "ssh_key", "laptop", "127.0.0.1"}, got); diff != "" || e.TenantID == "" {
		t.Errorf("login entry (-want +got):\n%s (tenant %q)", diff, e.TenantID)
	}
}

// TestMalformedChannelRequests sends direct-tcpip opens no OpenSSH client
// would: each is refused and the connection keeps working.
func TestMalformedChannelRequests(t *testing.T) {
	l := newLab(t, gateway.Config{})
	cfg := &ssh.ClientConfig{User: "acme", HostKeyCallback: ssh.FixedHostKey(l.gw.HostKey()), Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(l.signers(t, "acme"))}}
	c, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(l.gwPort)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	str := func(s string) []byte { return ssh.Marshal(struct{ S string }{s}) }
	u32 := func(n uint32) []byte { return ssh.Marshal(struct{ N uint32 }{n}) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	port := uint32(l.vmPort)
	for name, payload := range map[string][]byte{
		"empty":           nil,
		"short":           {0, 0, 0},
		"length overflow": {0xff, 0xff, 0xff, 0xff, 'w'},
		"no port":         str("web"),
		"port zero":       cat(str("web"), u32(0), str("x"), u32(1)),
		"port too large":  cat(str("web"), u32(1<<20), str("x"), u32(1)),
		"empty host":      cat(str(""), u32(port), str("x"), u32(1)),
		"huge host":       cat(str(strings.Repeat("a", 4000)), u32(port), str("x"), u32(1)),
		"nul in host":     cat(str("web\x00.acme"), u32(port), str("x"), u32(1)),
		"trailing junk":   cat(str("web"), u32(port), str("x"), u32(1), []byte{1, 2, 3}),
		"bad utf-8":       cat(str("\xff\xfe"), u32(port), str("x"), u32(1)),
	} {
		ch, reqs, err := c.OpenChannel("direct-tcpip", payload)
		if err == nil {
			go ssh.DiscardRequests(reqs)
			_ = ch.Close()
			t.Errorf("%s: channel opened", name)
			continue
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || !strings.HasPrefix(oce.Message, "Fibrix: ") {
			t.Errorf("%s: %v, want a refusal with a reason", name, err)
		}
	}
	// Still signed in and relaying.
	up, err := c.Dial("tcp", "web.acme.cloud.internal:"+l.vmPortArg())
	if err != nil {
		t.Fatalf("after malformed requests: %v", err)
	}
	_ = up.Close()
}

// TestIdleTimeout checks a signed-in connection that moves nothing is closed.
func TestIdleTimeout(t *testing.T) {
	l := newLab(t, gateway.Config{IdleTimeout: 300 * time.Millisecond})
	cfg := &ssh.ClientConfig{User: "acme", HostKeyCallback: ssh.FixedHostKey(l.gw.HostKey()), Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(l.signers(t, "acme"))}}
	c, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(l.gwPort)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Wait() }()
	select {
	case <-done:
		if el := time.Since(start); el < 250*time.Millisecond {
			t.Errorf("closed after %s, before the idle timeout", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("idle connection still open after 5 s")
	}
}

// TestOpenConnectionsEnd holds a real OpenSSH session to the VM through the
// gateway and shows it ends within seconds when staff suspend the tenant,
// that sessions work again once the suspension is lifted, and that removing
// the key a session signed in with ends that session too.
func TestOpenConnectionsEnd(t *testing.T) {
	l := newLab(t, gateway.Config{Recheck: 200 * time.Millisecond})
	ctx := context.Background()
	pemKey, err := os.ReadFile(l.keys["acme"])
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := l.st.GatewayAuth(ctx, "acme", ssh.FingerprintSHA256(signer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	staff := store.Actor{Email: "staff@example.com"}

	// open starts "ssh -J acme@gw web" running a long command, and waits
	// until the VM has answered through it.
	type held struct {
		done   chan error
		stderr *syncBuffer
	}
	open := func() held {
		t.Helper()
		cmd := exec.Command("ssh", "-F", l.config(t, "acme"), "-J", "acme@gw", "-p", l.vmPortArg(),
			"root@web.acme.cloud.internal", "echo ready; sleep 120")
		out, errb := &syncBuffer{}, &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h := held{done: make(chan error, 1), stderr: errb}
		go func() { h.done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "ready"); time.Sleep(20 * time.Millisecond) {
			select {
			case err := <-h.done:
				t.Fatalf("session ended before the VM answered: %v\n%s", err, errb)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the VM did not answer through the gateway:\n%s", errb)
			}
		}
		return h
	}
	endsWithin := func(h held, what string) {
		t.Helper()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the open session outlived %s by 10 s", what)
		}
	}
	lastAudit := func(action string) string {
		t.Helper()
		entries, _, err := l.st.ListAudit(ctx, store.AuditFilter{TenantID: id.TenantID}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Action == action {
				return e.Detail
			}
		}
		return ""
	}

	h := open()
	started := time.Now()
	if err := l.st.SuspendTenant(ctx, staff, id.TenantID, "unpaid invoice"); err != nil {
		t.Fatal(err)
	}
	endsWithin(h, "the suspension")
	t.Logf("session ended %v after the suspension", time.Since(started).Round(time.Millisecond))
	if got := lastAudit(gateway.ActionEnded); !strings.Contains(got, "suspended: unpaid invoice") {
		t.Errorf("disconnect audit detail %q", got)
	}
	if _, stderr, status := l.ssh(t, "acme", nil, "-J", "acme@gw", "-p", l.vmPortArg(), "root@web", "true"); status != 255 || !strings.Contains(stderr, "suspended") {
		t.Errorf("suspended tenant signed in again: status %d\n%s", status, stderr)
	}

	if err := l.st.UnsuspendTenant(ctx, staff, id.TenantID); err != nil {
		t.Fatal(err)
	}
	h = open()
	// A connection whose key is still there and tenant active is left
	// alone by the rechecks.
	time.Sleep(time.Second)
	select {
	case err := <-h.done:
		t.Fatalf("a good session ended: %v\n%s", err, h.stderr)
	default:
	}
	owner, err := l.st.GetTenant(ctx, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	started = time.Now()
	if err := l.st.DeleteSSHKey(ctx, store.Actor{TenantID: owner.ID, Email: "acme@example.com"}, id.TenantID, id.KeyID); err != nil {
		t.Fatal(err)
	}
	endsWithin(h, "its key")
	t.Logf("session ended %v after its key was removed", time.Since(started).Round(time.Millisecond))
	if got := lastAudit(gateway.ActionEnded); !strings.Contains(got, "key was removed") {
		t.Errorf("disconnect audit detail %q", got)
	}
}
