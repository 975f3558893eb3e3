package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// BenchmarkPlaceVM measures one placement decision with its reservation:
// read the usable hosts, rank them, reserve on the best with the guarded
// UPDATE, commit. The fleet is large enough never to fill.
func BenchmarkPlaceVM(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/hosts=%d", db, n), func(b *testing.B) {
				ctx := context.Background()
				url := filepath.Join(b.TempDir(), "bench.db")
				if db == "postgres" {
					url = pgtest.DSN(b)
				}
				s, err := Open(ctx, url, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close() })
				if _, err := s.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				seedHosts(b, s, n)
				need := capacity.Resources{VCPUs: 2, MemoryMiB: 4096, DiskGiB: 40}
				for b.Loop() {
					err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
						_, err := s.placeVM(tx, need)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			})
		}
	}
}

func seedHosts(b *testing.B, s *Store, n int) {
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
