package fleet_test

import (
	"context"
	"io"
	"log/slog"
	"os"
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
			d := fleet.NewDiscoverer(st, pool, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
