package fleet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/fleet"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestDiscovery(t *testing.T) {
	libvirttest.Ensure(t)
	for name, url := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "fibrix.db") },
		"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, url(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			pool := fleet.NewPool(nil)
			defer pool.Close()
			d := fleet.NewDiscoverer(st, pool, fleet.DiscoveryConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			staff := store.Actor{Email: "staff@isp.example"}
			add := func(name, uri, storagePool string) store.Host {
				h, err := st.CreateHost(ctx, staff, store.HostInput{Name: name, URI: uri, StoragePool: storagePool})
				if err != nil {
					t.Fatal(err)
				}
				d.Refresh(ctx, h)
				got, err := st.GetHost(ctx, h.ID)
				if err != nil {
					t.Fatal(err)
				}
				return got.Host
			}

			good := add("sim", "test:///default", "default-pool")
			if good.State != store.HostReady || good.Cores < 1 || good.MemoryMiB < 1 || good.DiskGiB < 1 || good.RefreshedAt == nil {
				t.Errorf("discovered host: %+v", good)
			}
			noPool := add("nopool", "test:///default", "missing")
			if noPool.State != store.HostError || !strings.Contains(noPool.LastError, `"missing" is not active`) {
				t.Errorf("host without its pool: state %s, %q", noPool.State, noPool.LastError)
			}
			unreachable := add("gone", "qemu+ssh://root@127.0.0.1:1/system", "default")
			if unreachable.State != store.HostError || unreachable.LastError == "" {
				t.Errorf("unreachable host: state %s, %q", unreachable.State, unreachable.LastError)
			}
			// A qemu+ssh host is never used before its key is pinned.
			if _, err := pool.Conn(ctx, unreachable); err == nil || !strings.Contains(err.Error(), "not known yet") {
				t.Errorf("connection to an unpinned host: %v", err)
			}
		})
	}
}

// TestSSHHostKeyPinnedAtDiscovery reaches libvirt through Debian's sshd: the
// host key is pinned on first contact, and a host that later presents
// another key is refused instead of used.
func TestSSHHostKeyPinnedAtDiscovery(t *testing.T) {
	libvirttest.Ensure(t)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	client, _ := libvirttest.NewKey(t)
	addr, hostKey := libvirttest.SSHD(t, client.PublicKey())
	pool := fleet.NewPool(client)
	defer pool.Close()
	d := fleet.NewDiscoverer(st, pool, fleet.DiscoveryConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))

	// The "remote" libvirtd is this machine's, reached over SSH; it has no
	// pool of that name, so discovery fails after the handshake, yet the
	// key is pinned on this first contact.
	h, err := st.CreateHost(ctx, store.Actor{Email: "staff@isp.example"}, store.HostInput{
		Name: "remote", URI: "qemu+ssh://root@" + addr + "/system", StoragePool: "no-such-pool"})
	if err != nil {
		t.Fatal(err)
	}
	d.Refresh(ctx, h)
	got, _ := st.GetHost(ctx, h.ID)
	if got.State != store.HostError || !strings.Contains(got.LastError, "no-such-pool") {
		t.Errorf("discovery without the pool: state %s, %q", got.State, got.LastError)
	}
	want := libvirttest.Authorized(hostKey)
	if got.SSHHostKey == "" {
		t.Fatalf("host key not pinned after first contact: state %s, %q", got.State, got.LastError)
	}
	if !strings.HasPrefix(want, strings.Join(strings.Fields(got.SSHHostKey)[:2], " ")) {
		t.Errorf("pinned %q, sshd has %q", got.SSHHostKey, want)
	}
	if _, err := pool.Conn(ctx, got.Host); err != nil {
		t.Errorf("connection with the pinned key: %v", err)
	}

	// Another machine answers at the same address: refused.
	pool.Forget(h.ID)
	addr2, _ := libvirttest.SSHD(t, client.PublicKey())
	moved := got.Host
	moved.URI = "qemu+ssh://root@" + addr2 + "/system"
	if _, err := pool.Conn(ctx, moved); err == nil || !strings.Contains(err.Error(), "host key") {
		t.Errorf("a different host key was accepted: %v", err)
	}
}

// TestDiscoveryConsoleLogDirectory: a host whose console log directory is
// missing (a fresh host, or one where it was removed) gets it created by
// discovery before any VM is placed there; a host where it cannot be made
// is kept out of service with the reason shown to staff.
func TestDiscoveryConsoleLogDirectory(t *testing.T) {
	libvirttest.Ensure(t)
	virsh, err := exec.LookPath("virsh")
	if err != nil {
		t.Fatal("virsh not found: install the Debian package libvirt-clients")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	poolName := fmt.Sprintf("fibrix-fleet-%d", os.Getpid())
	virshRun := func(args ...string) {
		t.Helper()
		out, err := exec.Command(virsh, append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("virsh %v: %v\n%s", args, err, out)
		}
	}
	virshRun("pool-define-as", poolName, "dir", "--target", filepath.Join(dir, "pool"))
	t.Cleanup(func() { virshRun("pool-undefine", poolName) })
	virshRun("pool-build", poolName)
	virshRun("pool-start", poolName)
	t.Cleanup(func() { virshRun("pool-destroy", poolName) })

	pool := fleet.NewPool(nil)
	defer pool.Close()
	discover := func(consoleDir string) store.Host {
		t.Helper()
		d := fleet.NewDiscoverer(st, pool, fleet.DiscoveryConfig{ConsoleLogDir: consoleDir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		h, err := st.CreateHost(ctx, store.Actor{Email: "staff@isp.example"}, store.HostInput{
			Name: filepath.Base(consoleDir), URI: "qemu:///system", StoragePool: poolName})
		if err != nil {
			t.Fatal(err)
		}
		d.Refresh(ctx, h)
		got, err := st.GetHost(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Host
	}

	missing := filepath.Join(dir, "log", "qemu-missing")
	if h := discover(missing); h.State != store.HostReady {
		t.Errorf("host with a missing console log directory: state %s, %q; want ready", h.State, h.LastError)
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Errorf("discovery did not create the console log directory: %v", err)
	}

	blocked := filepath.Join(dir, "qemu-blocked")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := discover(blocked)
	if h.State != store.HostError || !strings.Contains(h.LastError, "console log directory") || !strings.Contains(h.LastError, blocked) {
		t.Errorf("host whose console log directory cannot be made: state %s, %q; want error naming the directory", h.State, h.LastError)
	}
}
