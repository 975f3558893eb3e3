package hypervisor

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

// newKey makes an ed25519 key pair: the signer and its private key in
// OpenSSH PEM form.
func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, pem.EncodeToMemory(block)
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// sshServer runs Debian's sshd on a free loopback port, letting client log
// in as root, and returns its address and host key.
func sshServer(t *testing.T, client ssh.PublicKey) (string, ssh.PublicKey) {
	t.Helper()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		msg := "sshd not found: install the Debian package openssh-server"
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostSigner, hostPEM := newKey(t)
	hostKey := filepath.Join(dir, "host_key")
	authKeys := filepath.Join(dir, "authorized_keys")
	cfg := filepath.Join(dir, "sshd_config")
	files := map[string]string{
		hostKey:  string(hostPEM),
		authKeys: authorized(client) + "\n",
		cfg: fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
AllowStreamLocalForwarding yes
`, hostKey, authKeys),
	}
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)

	var log strings.Builder
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfg, "-p", port)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr, hostSigner.PublicKey()
}

func TestSSH(t *testing.T) {
	libvirttest.Ensure(t)
	clientKey, _ := newKey(t)
	addr, hostKey := sshServer(t, clientKey.PublicKey())
	uri := "qemu+ssh://root@" + addr + "/system"
	cx := ctx(t, 60*time.Second)

	// Trust on first use: the key offered comes back for pinning.
	start := time.Now()
	c, err := Dial(cx, Config{URI: uri, Signer: clientKey})
	if err != nil {
		t.Fatalf("Dial (TOFU): %v", err)
	}
	t.Logf("Dial over ssh: %v", time.Since(start))
	got := c.HostKey()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got != authorized(hostKey) {
		t.Fatalf("HostKey() = %q, want %q", got, authorized(hostKey))
	}

	// Pinned: the same key works, and the connection does real work.
	c, err = Dial(cx, Config{URI: uri, HostKey: got, Signer: clientKey})
	if err != nil {
		t.Fatalf("Dial (pinned): %v", err)
	}
	defer c.Close()
	if c.HostKey() != got {
		t.Errorf("HostKey() = %q, want the pinned %q", c.HostKey(), got)
	}
	spec := DomainSpec{Name: unique("fibrix-test-ssh-"), UUID: uuid.NewString(), VCPUs: 1, MemoryMiB: 64, Type: TypeQEMU}
	if err := c.Define(cx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Undefine(t.Context(), spec.Name) })
	names, err := c.Domains(cx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, spec.Name) {
		t.Errorf("Domains() = %v, want it to contain %s", names, spec.Name)
	}
	if err := c.Undefine(cx, spec.Name); err != nil {
		t.Fatal(err)
	}
	f, err := c.Facts(cx)
	if err != nil || f.Threads < 1 || f.MemoryMiB < 1 {
		t.Errorf("Facts over ssh = %+v, %v", f, err)
	}

	// Another pinned key: refused, with a clear reason.
	other, _ := newKey(t)
	_, err = Dial(cx, Config{URI: uri, HostKey: authorized(other.PublicKey()), Signer: clientKey})
	if !errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial with another pinned key = %v, want ErrHostKey", err)
	}
	t.Logf("Dial with another pinned key: %v", err)
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(hostKey)) {
		t.Errorf("error %q does not name the offered key %s", err, ssh.FingerprintSHA256(hostKey))
	}

	// A client key the host does not authorise: refused.
	stranger, _ := newKey(t)
	if _, err := Dial(cx, Config{URI: uri, HostKey: got, Signer: stranger}); err == nil {
		t.Error("Dial with an unauthorised client key succeeded")
	}
	// Malformed configuration: refused before dialling.
	for _, cfg := range []Config{
		{URI: uri},
		{URI: uri, HostKey: "not a key", Signer: clientKey},
		{URI: "qemu+tls://h/system", Signer: clientKey},
		{URI: "qemu://remote/system"},
	} {
		if _, err := Dial(cx, cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("Dial(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}
