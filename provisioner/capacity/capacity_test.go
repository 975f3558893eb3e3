package capacity_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// host is a usable host with 8 cores, 16 GiB and 100 GiB at ratios 4, 1, 1.
func host(name string, edit ...func(*capacity.Host)) capacity.Host {
	h := capacity.Host{ID: "id-" + name, Name: name, Enabled: true, Ready: true,
		Cores: 8, MemoryMiB: 16384, DiskGiB: 100, CPURatio: 4, MemoryRatio: 1, DiskRatio: 1}
	for _, e := range edit {
		e(&h)
	}
	return h
}

var small = capacity.Resources{VCPUs: 2, MemoryMiB: 2048, DiskGiB: 20}

func TestFigures(t *testing.T) {
	h := host("a", func(h *capacity.Host) {
		h.CPURatio, h.MemoryRatio, h.DiskRatio = 2.3, 1.5, 0.5
		h.Cores, h.MemoryMiB = 100, 1000
		h.Reserved = capacity.Resources{VCPUs: 2, MemoryMiB: 100, DiskGiB: 10}
		h.Allocated = capacity.Resources{VCPUs: 10, MemoryMiB: 1500, DiskGiB: 5}
	})
	want := capacity.Figures{
		// 100 × 2.3 is 229.99999999999997 in float64: still 230.
		CPU:    capacity.Figure{Physical: 100, Ratio: 2.3, Capacity: 230, Reserved: 2, Allocated: 10, Free: 218},
		Memory: capacity.Figure{Physical: 1000, Ratio: 1.5, Capacity: 1500, Reserved: 100, Allocated: 1500, Free: -100},
		Disk:   capacity.Figure{Physical: 100, Ratio: 0.5, Capacity: 50, Reserved: 10, Allocated: 5, Free: 35},
	}
	if diff := cmp.Diff(want, h.Figures()); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		phys  int64
		ratio float64
		want  int64
	}{{7, 1.5, 10}, {3, 0.5, 1}, {100, 2.3, 230}, {16384, 1.1, 18022}, {0, 4, 0}} {
		if got := capacity.Overcommitted(tc.phys, tc.ratio); got != tc.want {
			t.Errorf("Overcommitted(%d, %v) = %d, want %d", tc.phys, tc.ratio, got, tc.want)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hosts []capacity.Host
		need  capacity.Resources
		want  string
	}{
		{"none at all", nil, small, "no VM hosts are available; staff must add one"},
		{"disabled", []capacity.Host{host("a", func(h *capacity.Host) { h.Enabled = false })}, small,
			"no VM hosts are available; staff must add one"},
		{"maintenance", []capacity.Host{host("a", func(h *capacity.Host) { h.Maintenance = true })}, small,
			"no VM hosts are available; staff must add one"},
		{"not ready", []capacity.Host{host("a", func(h *capacity.Host) { h.Ready = false })}, small,
			"no VM hosts are available; staff must add one"},
		{"cpu", []capacity.Host{host("a", func(h *capacity.Host) { h.Cores, h.CPURatio = 2, 1 }), host("b", func(h *capacity.Host) { h.Allocated.VCPUs = 31 })},
			capacity.Resources{VCPUs: 4, MemoryMiB: 1024, DiskGiB: 10}, "no host has 4 vCPU free; best has 2 at 1.0× CPU overcommit"},
		{"memory", []capacity.Host{host("a", func(h *capacity.Host) { h.MemoryMiB = 6400 })},
			capacity.Resources{VCPUs: 1, MemoryMiB: 8192, DiskGiB: 10}, "no host has 8 GiB RAM free; best has 6.2 GiB at 1.0× memory overcommit"},
		{"memory at 1.5×", []capacity.Host{host("a", func(h *capacity.Host) { h.MemoryMiB, h.MemoryRatio, h.Allocated.MemoryMiB = 4096, 1.5, 5632 })},
			capacity.Resources{VCPUs: 1, MemoryMiB: 2048, DiskGiB: 10}, "no host has 2 GiB RAM free; best has 512 MiB at 1.5× memory overcommit"},
		{"disk", []capacity.Host{host("a", func(h *capacity.Host) { h.Reserved.DiskGiB = 90 })}, small,
			"no host has 20 GiB disk free; best has 10 GiB at 1.0× disk overcommit"},
		{"ratio lowered below use", []capacity.Host{host("a", func(h *capacity.Host) { h.Allocated.MemoryMiB, h.MemoryRatio = 20000, 1 })}, small,
			"no host has 2 GiB RAM free; best has 0 MiB at 1.0× memory overcommit"},
		{"maintenance host is not the best", []capacity.Host{
			host("big", func(h *capacity.Host) { h.Maintenance, h.MemoryMiB = true, 1<<20 }),
			host("small", func(h *capacity.Host) { h.MemoryMiB = 1024 })}, small,
			"no host has 2 GiB RAM free; best has 1 GiB at 1.0× memory overcommit"},
		{"never all on one host", []capacity.Host{
			host("cpu-rich", func(h *capacity.Host) { h.MemoryMiB = 1024 }),
			host("mem-rich", func(h *capacity.Host) { h.Cores = 0 })}, small,
			"no host has 2 vCPU, 2 GiB RAM and 20 GiB disk free at the same time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := capacity.Fit(tc.hosts, tc.need)
			var r *capacity.Refusal
			if !errors.As(err, &r) {
				t.Fatalf("Fit = %v, want a refusal", err)
			}
			if err.Error() != tc.want {
				t.Errorf("message = %q\nwant      %q", err, tc.want)
			}
			if _, err := capacity.Best(tc.hosts, tc.need, capacity.Spread); err == nil || err.Error() != tc.want {
				t.Errorf("Best refusal = %v", err)
			}
			if got := capacity.Rank(tc.hosts, tc.need, capacity.Spread); len(got) != 0 {
				t.Errorf("Rank = %d hosts, want none", len(got))
			}
		})
	}
}

func TestRatiosAndReservedChangeTheAnswer(t *testing.T) {
	need := capacity.Resources{VCPUs: 8, MemoryMiB: 8192, DiskGiB: 100}
	base := host("a", func(h *capacity.Host) { h.Cores, h.MemoryMiB, h.DiskGiB, h.CPURatio = 4, 6144, 60, 1 })
	for _, tc := range []struct {
		name string
		edit func(*capacity.Host)
		want string // "" fits
	}{
		{"as is", func(*capacity.Host) {}, "no host has 8 vCPU free; best has 4 at 1.0× CPU overcommit"},
		{"cpu 2×", func(h *capacity.Host) { h.CPURatio = 2 }, "no host has 8 GiB RAM free; best has 6 GiB at 1.0× memory overcommit"},
		{"cpu 2×, memory 1.5×", func(h *capacity.Host) { h.CPURatio, h.MemoryRatio = 2, 1.5 }, "no host has 100 GiB disk free; best has 60 GiB at 1.0× disk overcommit"},
		{"all raised", func(h *capacity.Host) { h.CPURatio, h.MemoryRatio, h.DiskRatio = 2, 1.5, 2 }, ""},
		{"all raised, one core reserved", func(h *capacity.Host) { h.CPURatio, h.MemoryRatio, h.DiskRatio, h.Reserved.VCPUs = 2, 1.5, 2, 1 },
			"no host has 8 vCPU free; best has 7 at 2.0× CPU overcommit"},
		{"all raised, 1 GiB reserved", func(h *capacity.Host) { h.CPURatio, h.MemoryRatio, h.DiskRatio, h.Reserved.MemoryMiB = 2, 1.5, 2, 1024 }, ""},
		{"all raised, 1 GiB reserved, 1 MiB less", func(h *capacity.Host) { h.CPURatio, h.MemoryRatio, h.DiskRatio, h.Reserved.MemoryMiB = 2, 1.5, 2, 1025 },
			"no host has 8 GiB RAM free; best has 7.9 GiB at 1.5× memory overcommit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := base
			tc.edit(&h)
			got := ""
			if err := capacity.Fit([]capacity.Host{h}, need); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Fit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStrategies(t *testing.T) {
	hosts := []capacity.Host{
		host("half", func(h *capacity.Host) { h.Allocated.MemoryMiB = 8192 }),
		host("empty"),
		host("full", func(h *capacity.Host) { h.Allocated.MemoryMiB = 16384 }),
		host("quarter", func(h *capacity.Host) { h.Allocated.MemoryMiB = 12288 }),
		// Twice the memory: the same 8 GiB free is a smaller share.
		host("big", func(h *capacity.Host) { h.MemoryMiB, h.Allocated.MemoryMiB = 32768, 24576 }),
		host("also-empty"),
	}
	names := func(hs []capacity.Host) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Name)
		}
		return out
	}
	for _, tc := range []struct {
		s    capacity.Strategy
		want []string
	}{
		{"", []string{"also-empty", "empty", "half", "big", "quarter"}},
		{capacity.Spread, []string{"also-empty", "empty", "half", "big", "quarter"}},
		{capacity.Pack, []string{"big", "quarter", "half", "also-empty", "empty"}},
	} {
		got := capacity.Rank(hosts, small, tc.s)
		if diff := cmp.Diff(tc.want, names(got)); diff != "" {
			t.Errorf("Rank %q (-want +got):\n%s", tc.s, diff)
		}
		best, err := capacity.Best(hosts, small, tc.s)
		if err != nil || best.Name != tc.want[0] {
			t.Errorf("Best %q = %s, %v", tc.s, best.Name, err)
		}
	}
	for in, want := range map[string]capacity.Strategy{"": capacity.Spread, " Pack ": capacity.Pack, "spread": capacity.Spread} {
		if got, err := capacity.ParseStrategy(in); err != nil || got != want {
			t.Errorf("ParseStrategy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := capacity.ParseStrategy("random"); err == nil {
		t.Error("ParseStrategy(random): want an error")
	}
}

// TestBestIsFirstRanked checks the allocation-free Best agrees with Rank.
func TestBestIsFirstRanked(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		hosts := randomHosts(rng, 50)
		need := capacity.Resources{VCPUs: rng.Int64N(8) + 1, MemoryMiB: (rng.Int64N(16) + 1) * 1024, DiskGiB: rng.Int64N(200) + 1}
		for _, s := range []capacity.Strategy{capacity.Spread, capacity.Pack} {
			ranked := capacity.Rank(hosts, need, s)
			best, err := capacity.Best(hosts, need, s)
			switch {
			case len(ranked) == 0 && err == nil:
				t.Fatalf("case %d %s: Best found %s, Rank found none", i, s, best.Name)
			case len(ranked) > 0 && (err != nil || best.ID != ranked[0].ID):
				t.Fatalf("case %d %s: Best = %s, %v; Rank[0] = %s", i, s, best.Name, err, ranked[0].Name)
			}
			if (capacity.Fit(hosts, need) == nil) != (len(ranked) > 0) {
				t.Fatalf("case %d: Fit disagrees with Rank", i)
			}
		}
	}
}

func randomHosts(rng *rand.Rand, n int) []capacity.Host {
	hosts := make([]capacity.Host, n)
	for i := range hosts {
		h := capacity.Host{ID: fmt.Sprintf("h%05d", i), Name: fmt.Sprintf("kvm-%05d", i),
			Enabled: rng.IntN(20) != 0, Maintenance: rng.IntN(20) == 0, Ready: rng.IntN(20) != 0,
			Cores: 16 + rng.Int64N(112), MemoryMiB: (64 + rng.Int64N(960)) * 1024, DiskGiB: 500 + rng.Int64N(8000),
			CPURatio: 1 + float64(rng.IntN(60))/4, MemoryRatio: 0.5 + float64(rng.IntN(14))/4, DiskRatio: 0.5 + float64(rng.IntN(38))/4}
		f := h.Figures()
		h.Allocated = capacity.Resources{VCPUs: rng.Int64N(f.CPU.Capacity + 1), MemoryMiB: rng.Int64N(f.Memory.Capacity + 1), DiskGiB: rng.Int64N(f.Disk.Capacity + 1)}
		hosts[i] = h
	}
	return hosts
}

func TestFormat(t *testing.T) {
	for in, want := range map[float64]string{1: "1.0×", 4: "4.0×", 1.5: "1.5×", 2.25: "2.25×", 0.5: "0.5×"} {
		if got := capacity.FormatRatio(in); got != want {
			t.Errorf("FormatRatio(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0 MiB", 512: "512 MiB", 1024: "1 GiB", 6348: "6.2 GiB", 8192: "8 GiB"} {
		if got := capacity.FormatMiB(in); got != want {
			t.Errorf("FormatMiB(%d) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkPlacement measures one placement decision over the whole fleet,
// from a slice of hosts and from a Ledger.
func BenchmarkPlacement(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		hosts := randomHosts(rand.New(rand.NewPCG(3, 4)), n)
		need := capacity.Resources{VCPUs: 2, MemoryMiB: 4096, DiskGiB: 40}
		for _, s := range []capacity.Strategy{capacity.Spread, capacity.Pack} {
			b.Run(fmt.Sprintf("hosts=%d/%s", n, s), func(b *testing.B) {
				for b.Loop() {
					if _, err := capacity.Best(hosts, need, s); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			})
		}
		l := capacity.NewLedger(hosts)
		for _, s := range []capacity.Strategy{capacity.Spread, capacity.Pack} {
			b.Run(fmt.Sprintf("hosts=%d/ledger-%s", n, s), func(b *testing.B) {
				for b.Loop() {
					h, ok := l.Best(need, s)
					if !ok {
						b.Fatal("no host")
					}
					// Place and give back, as an order that lost its race would.
					l.Allocate(h.ID, need)
					l.Allocate(h.ID, capacity.Resources{}.Minus(need))
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			})
		}
		b.Run(fmt.Sprintf("hosts=%d/rank", n), func(b *testing.B) {
			for b.Loop() {
				capacity.Rank(hosts, need, capacity.Spread)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
