package capacity_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// TestLedgerAgreesWithBest changes ledgers at random (allocations, hosts
// replaced, added and removed) and checks after every change that each
// chooses the host Best chooses over the same hosts: one always asked
// under Spread, one under Pack, and one under both in turn, so both the
// kept order and sorting again are covered.
func TestLedgerAgreesWithBest(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	strategies := [][]capacity.Strategy{{capacity.Spread}, {capacity.Pack}, {capacity.Pack, ""}}
	for c := range 20 {
		hosts := randomHosts(rng, 40)
		var ls []*capacity.Ledger
		for range strategies {
			ls = append(ls, capacity.NewLedger(hosts))
		}
		each := func(fn func(l *capacity.Ledger)) {
			for _, l := range ls {
				fn(l)
			}
		}
		for step := range 300 {
			l := ls[0]
			switch op := rng.IntN(10); {
			case op < 6 && l.Len() > 0:
				id := l.Hosts()[rng.IntN(l.Len())].ID
				n := capacity.Resources{VCPUs: rng.Int64N(9) - 4, MemoryMiB: (rng.Int64N(9) - 4) * 1024, DiskGiB: rng.Int64N(81) - 40}
				each(func(l *capacity.Ledger) {
					if !l.Allocate(id, n) {
						t.Fatalf("case %d step %d: Allocate(%s) found no host", c, step, id)
					}
				})
			case op < 8 && l.Len() > 0:
				h := randomHosts(rng, 1)[0]
				h.ID, h.Name = l.Hosts()[rng.IntN(l.Len())].ID, fmt.Sprintf("kvm-r%d", rng.IntN(5))
				each(func(l *capacity.Ledger) { l.Set(h) })
			case op < 9:
				h := randomHosts(rng, 1)[0]
				h.ID, h.Name = fmt.Sprintf("new-%d-%d", c, step), fmt.Sprintf("kvm-n%d", rng.IntN(5))
				each(func(l *capacity.Ledger) { l.Set(h) })
			case l.Len() > 0:
				id := l.Hosts()[rng.IntN(l.Len())].ID
				each(func(l *capacity.Ledger) { l.Remove(id) })
			}
			for _, h := range l.Hosts() {
				if got, ok := l.Host(h.ID); !ok || got.ID != h.ID {
					t.Fatalf("case %d step %d: Host(%s) = %s, %v", c, step, h.ID, got.ID, ok)
				}
			}
			need := capacity.Resources{VCPUs: rng.Int64N(8) + 1, MemoryMiB: (rng.Int64N(16) + 1) * 1024, DiskGiB: rng.Int64N(200) + 1}
			for k, ss := range strategies {
				for _, s := range ss {
					want, werr := capacity.Best(ls[k].Hosts(), need, s)
					got, ok := ls[k].Best(need, s)
					if ok != (werr == nil) || got.ID != want.ID {
						t.Fatalf("case %d step %d ledger %d %q: chose %q (%v); Best chose %q (%v)", c, step, k, s, got.ID, ok, want.ID, werr)
					}
				}
			}
		}
	}
	l := capacity.NewLedger(nil)
	if _, ok := l.Best(small, capacity.Spread); ok || l.Allocate("nope", small) {
		t.Error("an empty ledger found a host")
	}
	l.Remove("nope")
}
