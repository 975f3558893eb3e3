package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// BenchmarkPlaceVM measures placement decisions with their reservation:
// each is a transaction that chooses a host and reserves on it with the
// guarded UPDATE, then commits. The fleet is large enough never to fill.
// workers=1 is one order after another; on PostgreSQL workers=8 runs eight
// at once, as a busy portal would (SQLite runs writing transactions one at
// a time whatever the callers do).
//
// The test cluster runs without fsync, so "postgres" leaves out what a
// commit costs on a disk; "postgres-durable" is a cluster of its own with
// fsync, synchronous_commit and full_page_writes on, as in production.
func BenchmarkPlaceVM(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres", "postgres-durable"} {
		for _, n := range []int{1000, 10000} {
			for _, workers := range []int{1, 8} {
				if db == "sqlite" && workers > 1 {
					continue
				}
				b.Run(fmt.Sprintf("%s/hosts=%d/workers=%d", db, n, workers), func(b *testing.B) {
					s := benchStore(b, db)
					seedHosts(b, s, n)
					ctx := context.Background()
					need := capacity.Resources{VCPUs: 2, MemoryMiB: 4096, DiskGiB: 40}
					place := func() error {
						return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
							_, err := s.placeVM(tx, need)
							return err
						})
					}
					if workers == 1 {
						for b.Loop() {
							if err := place(); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism((workers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
						b.ResetTimer() // not the seeding
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := place(); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
				})
			}
		}
	}
}

func benchStore(tb testing.TB, db string) *Store {
	tb.Helper()
	ctx := context.Background()
	url := filepath.Join(tb.TempDir(), "bench.db")
	switch db {
	case "postgres":
		url = pgtest.DSN(tb)
	case "postgres-durable":
		url = pgtest.NewCluster(tb).DSN()
	}
	s, err := Open(ctx, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if db == "postgres-durable" {
		makeDurable(tb, s)
	}
	if _, err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

// makeDurable turns on, in a test cluster of its own, what the test
// clusters turn off for speed, and waits until the server runs with it.
func makeDurable(tb testing.TB, s *Store) {
	tb.Helper()
	for _, q := range []string{`ALTER SYSTEM SET fsync = on`, `ALTER SYSTEM SET synchronous_commit = on`,
		`ALTER SYSTEM SET full_page_writes = on`, `SELECT pg_reload_conf()`} {
		if err := s.db.Exec(q).Error; err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var fsync, commit string
		if err := s.db.Raw(`SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Row().Scan(&fsync, &commit); err != nil {
			tb.Fatal(err)
		}
		if fsync == "on" && commit == "on" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("fsync %s, synchronous_commit %s after reloading the configuration", fsync, commit)
		}
	}
}

// TestStaleLedgerIsOnlyAHint makes a Store's ledger wrong in the most
// dangerous way, a host a hundred times its size, and checks the database
// still holds placement to what fits.
func TestStaleLedgerIsOnlyAHint(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			s := benchStore(t, db)
			ts := now()
			// Room for three "medium" VMs (2 vCPU, 4 GiB, 40 GiB): memory binds.
			h := Host{ID: newID(), Name: "kvm-1", URI: "test:///default", Enabled: true, State: HostReady, StoragePool: "default",
				Cores: 64, MemoryMiB: 3*4096 + 1000, DiskGiB: 1000, CPURatio: 4, MemoryRatio: 1, DiskRatio: 1,
				RefreshedAt: &ts, CreatedAt: ts, UpdatedAt: ts}
			if err := s.db.Create(&h).Error; err != nil {
				t.Fatal(err)
			}
			medium := capacity.Resources{VCPUs: 2, MemoryMiB: 4096, DiskGiB: 40}
			place := func() error {
				return s.db.Transaction(func(tx *gorm.DB) error {
					_, err := s.placeVM(tx, medium)
					return err
				})
			}
			if err := place(); err != nil {
				t.Fatal(err)
			}
			l := s.ledger
			l.mu.Lock()
			big, ok := l.fleet.Host(h.ID)
			if !ok {
				t.Fatal("the ledger does not hold the host")
			}
			big.Cores, big.MemoryMiB, big.DiskGiB = big.Cores*100, big.MemoryMiB*100, big.DiskGiB*100
			l.fleet.Set(big)
			l.mu.Unlock()
			var placed int
			for range 10 {
				switch err := place(); {
				case err == nil:
					placed++
				case !errors.Is(err, ErrNoCapacity):
					t.Fatalf("order: %v", err)
				case err.Error() != "no host has 4 GiB RAM free; best has 1000 MiB at 1.0× memory overcommit":
					t.Errorf("refusal: %v", err)
				}
			}
			if placed != 2 {
				t.Errorf("%d more placed; want 2", placed)
			}
			var got Host
			if err := s.db.Take(&got, "id = ?", h.ID).Error; err != nil {
				t.Fatal(err)
			}
			if got.AllocMemoryMiB != 3*4096 || got.AllocVCPUs != 6 || got.AllocDiskGiB != 120 {
				t.Errorf("ledger in the database: %d vCPU, %d MiB, %d GiB; want 6, 12288, 120", got.AllocVCPUs, got.AllocMemoryMiB, got.AllocDiskGiB)
			}
			// The refusals corrected the ledger from the database.
			l.mu.Lock()
			fixed, _ := l.fleet.Host(h.ID)
			l.mu.Unlock()
			if fixed.MemoryMiB != h.MemoryMiB || fixed.Allocated.MemoryMiB != 3*4096 {
				t.Errorf("ledger after the refusals: %d MiB, %d allocated", fixed.MemoryMiB, fixed.Allocated.MemoryMiB)
			}
		})
	}
}

// TestHostChangesAreAnnounced checks every way hosts change outside a
// reservation moves the hosts version, and that the rows changed carry it.
func TestHostChangesAreAnnounced(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := benchStore(t, db)
			type mark struct{ version, epoch, rev int64 }
			var last mark
			var id string
			expect := func(what string, added bool) {
				t.Helper()
				tx := s.db.WithContext(ctx)
				var got mark
				var err error
				if got.version, got.epoch, err = readHostsVersion(tx); err != nil {
					t.Fatal(err)
				}
				if err := tx.Raw(`SELECT COALESCE(MAX(placement_rev), 0) FROM hosts WHERE id = ?`, id).Row().Scan(&got.rev); err != nil {
					t.Fatal(err)
				}
				want := mark{last.version + 1, last.epoch, last.version + 1}
				if added {
					want.epoch, want.rev = last.epoch+1, last.rev
				}
				if got != want {
					t.Errorf("%s: version, epoch, row = %+v; want %+v", what, got, want)
				}
				last = got
			}
			h := Host{ID: newID(), Name: "kvm-1", URI: "test:///default", Enabled: true, StoragePool: "default", CPURatio: 4, MemoryRatio: 1, DiskRatio: 1}
			id = h.ID
			if err := s.db.Create(&h).Error; err != nil {
				t.Fatal(err)
			}
			expect("create", true)
			if err := s.RecordHostFacts(ctx, id, Facts{Cores: 8, MemoryMiB: 16384, DiskGiB: 100}, ""); err != nil {
				t.Fatal(err)
			}
			expect("facts", false)
			if _, err := s.UpdateHost(ctx, Actor{Email: "staff@example.com"}, id, HostSettings{CPURatio: 2, MemoryRatio: 1, DiskRatio: 1, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			expect("settings", false)
			if err := s.RecordHostError(ctx, id, "gone"); err != nil {
				t.Fatal(err)
			}
			expect("error", false)
			if err := s.db.Model(&Host{}).Where("id = ?", id).Select("maintenance").Updates(map[string]any{"maintenance": true}).Error; err != nil {
				t.Fatal(err)
			}
			expect("update of chosen columns", true)
			if err := s.DeleteHost(ctx, Actor{Email: "staff@example.com"}, id); err != nil {
				t.Fatal(err)
			}
			// The row is gone, so its stamp reads as 0 against the last one.
			last.version++
			last.rev = 0
			expect("delete", true)
			// Reservations are not announced.
			before := last
			if err := s.db.Create(&Host{ID: newID(), Name: "kvm-2", URI: "test:///default", Enabled: true, State: HostReady, StoragePool: "default",
				Cores: 8, MemoryMiB: 16384, DiskGiB: 100, CPURatio: 4, MemoryRatio: 1, DiskRatio: 1}).Error; err != nil {
				t.Fatal(err)
			}
			err := s.db.Transaction(func(tx *gorm.DB) error {
				_, err := s.placeVM(tx, capacity.Resources{VCPUs: 1, MemoryMiB: 1024, DiskGiB: 10})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			v, e, err := readHostsVersion(s.db)
			if err != nil || v != before.version+1 || e != before.epoch+1 {
				t.Errorf("after adding a host and placing on it: version %d, epoch %d, %v; want %d, %d", v, e, err, before.version+1, before.epoch+1)
			}
		})
	}
}

func seedHosts(b testing.TB, s *Store, n int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	ts := now()
	hosts := make([]Host, n)
	for i := range hosts {
		hosts[i] = Host{ID: newID(), Name: fmt.Sprintf("kvm-%05d", i), URI: "test:///default", Enabled: true, State: HostReady, StoragePool: "default",
			Cores: 64 + rng.Int64N(64), MemoryMiB: (512 + rng.Int64N(512)) * 1024, DiskGiB: 20000,
			CPURatio: 4, MemoryRatio: 1, DiskRatio: 1, AllocMemoryMiB: rng.Int64N(256) * 1024,
			RefreshedAt: &ts, CreatedAt: ts, UpdatedAt: ts}
	}
	if err := s.db.CreateInBatches(hosts, 500).Error; err != nil {
		b.Fatal(err)
	}
}
