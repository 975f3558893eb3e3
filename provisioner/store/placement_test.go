package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// roomyQuota lets a tenant order far more than any test host holds.
var roomyQuota = store.Quota{Instances: 1000, VCPUs: 10000, MemoryMiB: 1 << 30, DiskGiB: 1 << 30, SSHKeys: 10}

func bigTenant(t testing.TB, s *store.Store, name string) fixture {
	t.Helper()
	f := setup(t, s, name)
	if err := s.SetTenantQuota(context.Background(), staff, f.tenant.ID, roomyQuota); err != nil {
		t.Fatal(err)
	}
	return f
}

func hostOf(t testing.TB, s *store.Store, tenantID, vmID string) store.HostSummary {
	t.Helper()
	ctx := context.Background()
	d, err := s.GetVM(ctx, tenantID, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if d.HostID == nil {
		t.Fatalf("vm %s has no host", d.Name)
	}
	h, err := s.GetHost(ctx, *d.HostID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestOrderRefusals orders a "large" VM (4 vCPU, 8 GiB, 80 GiB) against
// fleets that cannot take it, and checks the order form sees the same answer.
func TestOrderRefusals(t *testing.T) {
	const noHosts = "no VM hosts are available; staff must add one"
	plenty := store.Facts{Cores: 64, MemoryMiB: 262144, DiskGiB: 4000}
	on := store.HostSettings{CPURatio: 4, MemoryRatio: 1, DiskRatio: 1, Enabled: true}
	cases := []struct {
		name  string
		fleet func(t *testing.T, s *store.Store)
		want  string
	}{
		{"none at all", func(*testing.T, *store.Store) {}, noHosts},
		{"disabled", func(t *testing.T, s *store.Store) {
			h := addHost(t, s, store.HostInput{Name: "kvm"}, plenty)
			off := on
			off.Enabled = false
			if _, err := s.UpdateHost(context.Background(), staff, h.ID, off); err != nil {
				t.Fatal(err)
			}
		}, noHosts},
		{"maintenance", func(t *testing.T, s *store.Store) {
			h := addHost(t, s, store.HostInput{Name: "kvm"}, plenty)
			m := on
			m.Maintenance = true
			if _, err := s.UpdateHost(context.Background(), staff, h.ID, m); err != nil {
				t.Fatal(err)
			}
		}, noHosts},
		{"not yet discovered", func(t *testing.T, s *store.Store) {
			if _, err := s.CreateHost(context.Background(), staff, store.HostInput{Name: "kvm", URI: "test:///default"}); err != nil {
				t.Fatal(err)
			}
		}, noHosts},
		{"discovery failed", func(t *testing.T, s *store.Store) {
			h := addHost(t, s, store.HostInput{Name: "kvm"}, plenty)
			if err := s.RecordHostError(context.Background(), h.ID, "ssh: handshake failed"); err != nil {
				t.Fatal(err)
			}
		}, noHosts},
		{"cpu", func(t *testing.T, s *store.Store) {
			addHost(t, s, store.HostInput{Name: "kvm", CPURatio: 1}, store.Facts{Cores: 2, MemoryMiB: 262144, DiskGiB: 4000})
		}, "no host has 4 vCPU free; best has 2 at 1.0× CPU overcommit"},
		{"cpu after reservation", func(t *testing.T, s *store.Store) {
			addHost(t, s, store.HostInput{Name: "kvm", ReservedCores: 1}, store.Facts{Cores: 1, MemoryMiB: 262144, DiskGiB: 4000})
		}, "no host has 4 vCPU free; best has 3 at 4.0× CPU overcommit"},
		{"memory", func(t *testing.T, s *store.Store) {
			addHost(t, s, store.HostInput{Name: "kvm"}, store.Facts{Cores: 64, MemoryMiB: 6400, DiskGiB: 4000})
			// A bigger host in maintenance does not count.
			h := addHost(t, s, store.HostInput{Name: "kvm-big"}, plenty)
			m := on
			m.Maintenance = true
			if _, err := s.UpdateHost(context.Background(), staff, h.ID, m); err != nil {
				t.Fatal(err)
			}
		}, "no host has 8 GiB RAM free; best has 6.2 GiB at 1.0× memory overcommit"},
		{"memory at 1.5×", func(t *testing.T, s *store.Store) {
			addHost(t, s, store.HostInput{Name: "kvm", MemoryRatio: 1.5}, store.Facts{Cores: 64, MemoryMiB: 4096, DiskGiB: 4000})
		}, "no host has 8 GiB RAM free; best has 6 GiB at 1.5× memory overcommit"},
		{"disk", func(t *testing.T, s *store.Store) {
			addHost(t, s, store.HostInput{Name: "kvm", ReservedDiskGiB: 10}, store.Facts{Cores: 64, MemoryMiB: 262144, DiskGiB: 60})
		}, "no host has 80 GiB disk free; best has 50 GiB at 1.0× disk overcommit"},
	}
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := bigTenant(t, s, "refused")
		large, err := s.GetPlan(ctx, "large")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				onlyHosts(t, s)
				tc.fleet(t, s)
				_, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "big", "large"))
				e, ok := store.AsError(err)
				if !ok || !errors.Is(err, store.ErrNoCapacity) || e.Field != "plan" || err.Error() != tc.want {
					t.Errorf("order: %v\nwant %q", err, tc.want)
				}
				answers, err := s.PlanCapacity(ctx, []store.Plan{large})
				if err != nil {
					t.Fatal(err)
				}
				if got := answers[large.ID]; !errors.Is(got, store.ErrNoCapacity) || got.Error() != tc.want {
					t.Errorf("PlanCapacity = %v", got)
				}
			})
		}
		if _, total, _ := s.ListVMs(ctx, f.tenant.ID, store.Page{}); total != 0 {
			t.Errorf("refused orders left %d VMs", total)
		}
		entries, _, _ := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "vm.create", Result: store.ResultFailure}, store.Page{})
		if len(entries) != len(cases) || entries[0].Detail != cases[len(cases)-1].want {
			t.Errorf("audit: %d refusals recorded, want %d", len(entries), len(cases))
		}
	})
}

func TestPlacementLedger(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := bigTenant(t, s, "ledger")
		onlyHosts(t, s)
		// 4 cores × 1.0, 8 GiB × 1.0, 100 GiB: room for two "medium" VMs.
		h := addHost(t, s, store.HostInput{Name: "kvm-1", CPURatio: 1}, store.Facts{Cores: 4, MemoryMiB: 8192, DiskGiB: 100})
		var vms []store.VM
		for i := range 2 {
			vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("m-%d", i), "medium"))
			if err != nil {
				t.Fatal(err)
			}
			if vm.HostID == nil || *vm.HostID != h.ID {
				t.Errorf("vm placed on %v, want %s", vm.HostID, h.ID)
			}
			vms = append(vms, vm)
		}
		got := hostOf(t, s, f.tenant.ID, vms[0].ID)
		if got.AllocVCPUs != 4 || got.AllocMemoryMiB != 8192 || got.AllocDiskGiB != 80 || got.VMs != 2 || got.Figures.Memory.Free != 0 {
			t.Errorf("ledger after two orders: %d vCPU, %d MiB, %d GiB, %d VMs", got.AllocVCPUs, got.AllocMemoryMiB, got.AllocDiskGiB, got.VMs)
		}
		plans, _ := s.ListPlans(ctx, true)
		fits := func() map[string]string {
			answers, err := s.PlanCapacity(ctx, plans)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, p := range plans {
				out[p.Name] = ""
				if answers[p.ID] != nil {
					out[p.Name] = answers[p.ID].Error()
				}
			}
			return out
		}
		if got := fits()["nano"]; got != "no host has 1 vCPU free; best has 0 at 1.0× CPU overcommit" {
			t.Errorf("nano on a full host: %q", got)
		}
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "n", "nano")); !errors.Is(err, store.ErrNoCapacity) {
			t.Errorf("order on a full host: %v", err)
		}
		// Raising the ratios makes room.
		set := store.HostSettings{CPURatio: 2, MemoryRatio: 1.5, DiskRatio: 2, Enabled: true}
		if _, err := s.UpdateHost(ctx, staff, h.ID, set); err != nil {
			t.Fatal(err)
		}
		// 8 vCPU − 4 placed leaves large's 4; 12 GiB − 8 placed does not.
		want := map[string]string{"nano": "", "small": "", "medium": "", "large": "no host has 8 GiB RAM free; best has 4 GiB at 1.5× memory overcommit"}
		if diff := cmpMap(want, fits()); diff != "" {
			t.Errorf("after raising ratios: %s", diff)
		}
		// Reserving memory for the host itself takes it away again.
		set.ReservedMemoryMiB = 3584
		if _, err := s.UpdateHost(ctx, staff, h.ID, set); err != nil {
			t.Fatal(err)
		}
		want = map[string]string{"nano": "", "small": "no host has 2 GiB RAM free; best has 512 MiB at 1.5× memory overcommit",
			"medium": "no host has 4 GiB RAM free; best has 512 MiB at 1.5× memory overcommit",
			"large":  "no host has 8 GiB RAM free; best has 512 MiB at 1.5× memory overcommit"}
		if diff := cmpMap(want, fits()); diff != "" {
			t.Errorf("after reserving memory: %s", diff)
		}
		// Release restores capacity, once.
		for range 2 {
			if err := s.ReleaseHostCapacity(ctx, vms[0].ID); err != nil {
				t.Fatal(err)
			}
		}
		got, _ = s.GetHost(ctx, h.ID)
		if got.AllocVCPUs != 2 || got.AllocMemoryMiB != 4096 || got.AllocDiskGiB != 40 || got.VMs != 1 {
			t.Errorf("ledger after release: %d vCPU, %d MiB, %d GiB, %d VMs", got.AllocVCPUs, got.AllocMemoryMiB, got.AllocDiskGiB, got.VMs)
		}
		if d, _ := s.GetVM(ctx, f.tenant.ID, vms[0].ID); d.HostID != nil {
			t.Errorf("released vm still on host %s", *d.HostID)
		}
		if got := fits()["medium"]; got != "" {
			t.Errorf("medium after release: %q", got)
		}
		if err := s.ReleaseHostCapacity(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("release unknown vm: %v", err)
		}
	})
}

func cmpMap(want, got map[string]string) string {
	var out string
	for k, w := range want {
		if got[k] != w {
			out += fmt.Sprintf("\n%s: got %q, want %q", k, got[k], w)
		}
	}
	return out
}

func TestPlacementStrategy(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := bigTenant(t, s, "strategy")
		onlyHosts(t, s)
		a := addHost(t, s, store.HostInput{Name: "kvm-a"}, store.Facts{Cores: 16, MemoryMiB: 16384, DiskGiB: 1000})
		b := addHost(t, s, store.HostInput{Name: "kvm-b"}, store.Facts{Cores: 16, MemoryMiB: 16384, DiskGiB: 1000})
		place := func(name string) string {
			t.Helper()
			vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, name, "small"))
			if err != nil {
				t.Fatal(err)
			}
			return *vm.HostID
		}
		// Spread alternates between the two equal hosts.
		if got := []string{place("s-1"), place("s-2"), place("s-3")}; got[0] != a.ID || got[1] != b.ID || got[2] != a.ID {
			t.Errorf("spread placed on %v; want a, b, a", got)
		}
		// Pack fills the fuller host (a, with two VMs) first.
		s.Placement = capacity.Pack
		if got := []string{place("p-1"), place("p-2")}; got[0] != a.ID || got[1] != a.ID {
			t.Errorf("pack placed on %v; want a, a", got)
		}
	})
}

// TestConcurrentOrdersNeverOversubscribe races 50 orders from 50 tenants
// for room on three hosts on PostgreSQL: exactly as many as fit succeed,
// every host's ledger equals what is placed on it, and none is over.
func TestConcurrentOrdersNeverOversubscribe(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.DSN(t))
	const orders = 50
	fs := make([]fixture, orders)
	for i := range fs {
		fs[i] = bigTenant(t, s, fmt.Sprintf("tenant-%d", i))
	}
	onlyHosts(t, s)
	// Memory binds: room for 7, 5 and 8 "small" (2 GiB) VMs.
	for i, gib := range []int64{14, 10, 17} {
		addHost(t, s, store.HostInput{Name: fmt.Sprintf("kvm-%d", i)}, store.Facts{Cores: 64, MemoryMiB: gib * 1024, DiskGiB: 10000})
	}
	const fit = 7 + 5 + 8
	var wg sync.WaitGroup
	errs := make([]error, orders)
	start := make(chan struct{})
	for i := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.CreateVM(ctx, fs[i].actor, fs[i].tenant.ID, order(fs[i], "vm", "small"))
		}()
	}
	close(start)
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNoCapacity):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != fit {
		t.Errorf("%d orders succeeded; want %d", ok, fit)
	}
	hosts, err := s.ListHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var placed int64
	for _, h := range hosts {
		if h.Figures.Memory.Free < 0 || h.Figures.Memory.Free >= 2048 {
			t.Errorf("%s: %d MiB free after the race; want 0–2047", h.Name, h.Figures.Memory.Free)
		}
		if h.AllocMemoryMiB != h.VMs*2048 || h.AllocVCPUs != h.VMs {
			t.Errorf("%s: ledger %d MiB / %d vCPU for %d VMs", h.Name, h.AllocMemoryMiB, h.AllocVCPUs, h.VMs)
		}
		placed += h.VMs
	}
	if placed != fit {
		t.Errorf("%d VMs placed; want %d", placed, fit)
	}
}
