package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/gateway"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

const zone = "cloud.internal"

// lab is a gateway in front of a real sshd playing the VM "web" of tenant
// acme at 127.0.0.2, with the database on SQLite.
type lab struct {
	dir      string
	st       *store.Store
	gw       *gateway.Server
	gwPort   int
	vmPort   int
	keys     map[string]string // name → private key file
	logs     *syncBuffer
	sshdLogs *syncBuffer
}

// need finds a tool, or skips (fails under CI) naming its Debian package.
func need(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: install the Debian package %s", tool, pkg)
		}
		t.Skipf("%s not found: install the Debian package %s", tool, pkg)
	}
	return p
}

// newKey writes an ed25519 private key in OpenSSH form and returns the path
// and the public key.
func newKey(t testing.TB, dir, name string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, sp
}

func authorized(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func freePort(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runVM plays the provisioner for one ordered VM: running, with an address.
func runVM(t testing.TB, st *store.Store, vmID string) string {
	t.Helper()
	ctx := context.Background()
	for range 10 {
		vm, ok, err := st.ClaimVM(ctx, "lab", time.Hour)
		if err != nil || !ok {
			t.Fatalf("claim: ok=%v err=%v", ok, err)
		}
		if vm.ID == vmID {
			break
		}
	}
	if err := st.SetVMState(ctx, vmID, "lab", store.VMRunning, ""); err != nil {
		t.Fatal(err)
	}
	a, err := st.AllocateIP(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	return a.IP.String()
}

func newLab(t testing.TB, cfg gateway.Config) *lab {
	t.Helper()
	need(t, "ssh", "openssh-client")
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		sshd = need(t, "sshd", "openssh-server")
	}
	// sshd refuses to start without its privilege separation directory,
	// which only the openssh-server service creates at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v (create it as root: install -d -m 0755 /run/sshd)", err)
	}
	ctx := context.Background()
	l := &lab{dir: t.TempDir(), keys: map[string]string{}, logs: &syncBuffer{}, sshdLogs: &syncBuffer{}}

	// Database: three tenants, each with a key; acme runs "web", globex
	// runs "db"; initech is suspended.
	st, err := store.Open(ctx, filepath.Join(l.dir, "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	l.st = st
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
	var customer ssh.PublicKey
	vms := map[string]string{"acme": "web", "globex": "db"}
	for _, name := range []string{"acme", "globex", "initech"} {
		ten, u, err := st.SignUp(ctx, store.Actor{}, name, name+"@example.com", "hash")
		if err != nil {
			t.Fatal(err)
		}
		a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
		path, pub := newKey(t, l.dir, name)
		l.keys[name] = path
		if name == "acme" {
			customer = pub
		}
		k, err := st.AddSSHKey(ctx, a, ten.ID, "laptop", authorized(pub))
		if err != nil {
			t.Fatal(err)
		}
		if vm := vms[name]; vm != "" {
			o, err := st.CreateVM(ctx, a, ten.ID, store.VMOrder{Name: vm, Plan: "nano", Image: img.Name, SSHKeys: []string{k.ID}})
			if err != nil {
				t.Fatal(err)
			}
			ip := runVM(t, st, o.ID)
			if want := map[string]string{"web": "127.0.0.2", "db": "127.0.0.3"}[vm]; ip != want {
				t.Fatalf("%s got address %s, want %s", vm, ip, want)
			}
		}
		if name == "initech" {
			if err := st.SuspendTenant(ctx, staff, ten.ID, "unpaid invoice"); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.keys["unknown"], _ = newKey(t, l.dir, "unknown")

	// The "VM": Debian's sshd on 127.0.0.2, letting in acme's key and, so
	// that only the gateway can refuse it, globex's.
	vmKeyPath, vmKey := newKey(t, l.dir, "vm_host_key")
	globexPub, err := os.ReadFile(l.keys["globex"])
	if err != nil {
		t.Fatal(err)
	}
	gsigner, err := ssh.ParsePrivateKey(globexPub)
	if err != nil {
		t.Fatal(err)
	}
	ak := authorized(customer) + "\n" + authorized(gsigner.PublicKey()) + "\n"
	if err := os.WriteFile(filepath.Join(l.dir, "authorized_keys"), []byte(ak), 0o600); err != nil {
		t.Fatal(err)
	}
	l.vmPort = freePort(t, "127.0.0.2")
	conf := fmt.Sprintf(`ListenAddress 127.0.0.2:%d
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
AllowUsers root %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
LogLevel VERBOSE
`, l.vmPort, vmKeyPath, filepath.Join(l.dir, "authorized_keys"), currentUser())
	if err := os.WriteFile(filepath.Join(l.dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(l.dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = l.sshdLogs, l.sshdLogs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitPort(t, fmt.Sprintf("127.0.0.2:%d", l.vmPort), l.sshdLogs)

	// The gateway, with a host key written once, as cmd keeps it.
	pemKey, err := gateway.GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Zone, cfg.HostKeyPEM, cfg.TargetPort = zone, pemKey, l.vmPort
	gw, err := gateway.New(cfg, st, slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	l.gw = gw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.gwPort = ln.Addr().(*net.TCPAddr).Port
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gw.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})

	kh := fmt.Sprintf("[127.0.0.1]:%d %s\nvm %s\n", l.gwPort, authorized(gw.HostKey()), authorized(vmKey))
	if err := os.WriteFile(filepath.Join(l.dir, "known_hosts"), []byte(kh), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func waitPort(t testing.TB, addr string, logs *syncBuffer) {
	t.Helper()
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s; sshd said:\n%s", addr, logs)
}

// config writes an ssh_config for one key. The jump ssh (ProxyJump runs a
// second ssh) reads only the -F file, not -o options, so everything the
// gateway hop needs is in the file: "gw" is the gateway, and every other
// host is a VM checked against the sshd's key under the alias "vm".
func (l *lab) config(t testing.TB, key string) string {
	t.Helper()
	path := filepath.Join(l.dir, "ssh_config-"+key)
	conf := fmt.Sprintf(`Host gw
	HostName 127.0.0.1
	Port %d
Host * !gw
	HostKeyAlias vm
Host *
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	CheckHostIP no
	BatchMode yes
	IdentitiesOnly yes
	IdentityAgent none
	IdentityFile %s
	ConnectTimeout 10
	ControlMaster no
	ControlPath none
`, l.gwPort, filepath.Join(l.dir, "known_hosts"), l.keys[key])
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ssh runs the OpenSSH client with key and returns its output and exit status.
func (l *lab) ssh(t testing.TB, key string, stdin []byte, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", append([]string{"-F", l.config(t, key)}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitCode()
	default:
		t.Fatalf("run ssh: %v", err)
	}
	return out.String(), errb.String(), status
}

func (l *lab) vmPortArg() string { return strconv.Itoa(l.vmPort) }

func itoa(n int) string { return strconv.Itoa(n) }

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// readAll connects and counts what the server sends before it closes.
func readAll(t testing.TB, addr string, wait time.Duration) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, _ := c.Read(make([]byte, 256))
	return n
}

// fakeStore refuses everything; for tests that never reach the database.
type fakeStore struct{}

func (fakeStore) GatewayAuth(context.Context, string, string) (store.GatewayIdentity, error) {
	return store.GatewayIdentity{}, store.ErrNotFound
}

func (fakeStore) GatewayTarget(context.Context, string, string, string) (netip.Addr, string, error) {
	return netip.Addr{}, "", store.ErrNotFound
}

func (fakeStore) GatewayRevoked(context.Context, []string) (map[string]string, error) {
	return nil, nil
}

func (fakeStore) RecordAudit(context.Context, store.Actor, string, *store.Target, string, string) error {
	return nil
}

// syncBuffer is a log sink the test may read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
