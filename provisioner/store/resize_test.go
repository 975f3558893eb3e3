package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// vmFacts is what a resize may change of a VM and its host, for checking
// that a refusal changed nothing.
type vmFacts struct {
	Plan                        string
	VCPUs, MemoryMiB, DiskGiB   int64
	HostVCPUs, HostMem, HostDis int64
	Ops                         int
}

func factsOf(t *testing.T, s *store.Store, tenantID, vmID string) vmFacts {
	t.Helper()
	d, err := s.GetVM(context.Background(), tenantID, vmID)
	if err != nil {
		t.Fatal(err)
	}
	h := hostOf(t, s, tenantID, vmID)
	return vmFacts{d.PlanName, d.VCPUs, d.MemoryMiB, d.DiskGiB, h.AllocVCPUs, h.AllocMemoryMiB, h.AllocDiskGiB, len(d.Operations)}
}

func mustPlan(t *testing.T, s *store.Store, name string, vcpus, mem, disk int64) {
	t.Helper()
	if _, err := s.CreatePlan(context.Background(), staff, store.PlanInput{Name: name, VCPUs: vcpus, MemoryMiB: mem, DiskGiB: disk, Enabled: true}); err != nil {
		t.Fatal(err)
	}
}

// TestResizeVM resizes a running VM on a small host at 1.0× CPU and 1.5×
// memory overcommit: every refusal names its binding limit and changes
// nothing; an accepted resize moves the host's ledger by the difference,
// queues the operation, is audited, and splits the VM's usage at the old
// and the new plan's price.
func TestResizeVM(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := &testClock{}
		s.SetClock(clock.now)
		clock.set("2026-11-10 10:00")
		f := bigTenant(t, s, "resized")
		onlyHosts(t, s)
		h := addHost(t, s, store.HostInput{Name: "kvm", CPURatio: 1, MemoryRatio: 1.5}, store.Facts{Cores: 4, MemoryMiB: 4096, DiskGiB: 100})
		mustPlan(t, s, "cpu8", 8, 512, 10)
		mustPlan(t, s, "disk200", 1, 512, 200)
		mustPlan(t, s, "slim", 1, 1024, 40)
		nano, _ := s.GetPlan(ctx, "nano")
		medium, _ := s.GetPlan(ctx, "medium")
		pn := mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "")
		pm := mustPrice(t, s, store.PlanItem(medium.ID), 30000, 2000, true, "")

		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		advance(t, s, vm.ID, store.VMRunning)
		before := factsOf(t, s, f.tenant.ID, vm.ID)

		other := setup(t, s, "stranger")
		for _, tc := range []struct {
			name, plan string
			quota      *store.Quota
			kind       error
			want       string
		}{
			{"no plan", "", nil, store.ErrInvalid, "choose the plan to change to"},
			{"unknown plan", "huge", nil, store.ErrInvalid, "this plan does not exist or is no longer offered"},
			{"same plan", "nano", nil, store.ErrInvalid, "the VM already has the nano plan"},
			{"quota vcpu", "medium", &store.Quota{Instances: 5, VCPUs: 1, MemoryMiB: 1 << 20, DiskGiB: 1000, SSHKeys: 5}, store.ErrQuota,
				"the medium plan needs 2 vCPU; your quota leaves 1 for this VM"},
			{"quota memory", "medium", &store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 2048, DiskGiB: 1000, SSHKeys: 5}, store.ErrQuota,
				"the medium plan needs 4 GiB RAM; your quota leaves 2 GiB for this VM"},
			{"quota disk", "medium", &store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 1 << 20, DiskGiB: 30, SSHKeys: 5}, store.ErrQuota,
				"the medium plan needs 40 GiB disk; your quota leaves 30 GiB for this VM"},
			{"host vcpu", "cpu8", nil, store.ErrNoCapacity, "the cpu8 plan needs 7 vCPU more; this VM's host has 3 free at 1.0× CPU overcommit"},
			{"host memory", "large", nil, store.ErrNoCapacity, "the large plan needs 7.5 GiB RAM more; this VM's host has 5.5 GiB free at 1.5× memory overcommit"},
			{"host disk", "disk200", nil, store.ErrNoCapacity, "the disk200 plan needs 190 GiB disk more; this VM's host has 90 GiB free at 1.0× disk overcommit"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := roomyQuota
				if tc.quota != nil {
					q = *tc.quota
				}
				if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, q); err != nil {
					t.Fatal(err)
				}
				_, err := s.ResizeVM(ctx, f.actor, f.tenant.ID, vm.ID, tc.plan)
				e, ok := store.AsError(err)
				if !ok || !errors.Is(err, tc.kind) || e.Field != "plan" || e.Message != tc.want {
					t.Errorf("resize to %q: %v\nwant %v %q", tc.plan, err, tc.kind, tc.want)
				}
				if got := factsOf(t, s, f.tenant.ID, vm.ID); got != before {
					t.Errorf("a refused resize changed %+v to %+v", before, got)
				}
			})
		}
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, roomyQuota); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResizeVM(ctx, other.actor, other.tenant.ID, vm.ID, "medium"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant's resize: %v, want not found", err)
		}
		choices, err := s.ResizeChoices(ctx, f.tenant.ID, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		offered := map[string]string{}
		for _, c := range choices {
			offered[c.Plan.Name] = ""
			if c.Err != nil {
				offered[c.Plan.Name] = c.Err.Error()
			}
		}
		wantOffered := map[string]string{"small": "", "medium": "", "slim": "",
			"cpu8":    "the cpu8 plan needs 7 vCPU more; this VM's host has 3 free at 1.0× CPU overcommit",
			"large":   "the large plan needs 7.5 GiB RAM more; this VM's host has 5.5 GiB free at 1.5× memory overcommit",
			"disk200": "the disk200 plan needs 190 GiB disk more; this VM's host has 90 GiB free at 1.0× disk overcommit"}
		if diff := cmp.Diff(wantOffered, offered); diff != "" {
			t.Errorf("resize choices (-want +got):\n%s", diff)
		}

		// A host in maintenance takes no growth.
		maint := store.HostSettings{CPURatio: 1, MemoryRatio: 1.5, DiskRatio: 1, Enabled: true, Maintenance: true}
		if _, err := s.UpdateHost(ctx, staff, h.ID, maint); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResizeVM(ctx, f.actor, f.tenant.ID, vm.ID, "medium"); !errors.Is(err, store.ErrNoCapacity) ||
			err.Error() != "this VM's host is in maintenance, so the VM cannot grow now; try again later" {
			t.Errorf("resize on a host in maintenance: %v", err)
		}
		maint.Maintenance = false
		if _, err := s.UpdateHost(ctx, staff, h.ID, maint); err != nil {
			t.Fatal(err)
		}

		clock.set("2026-11-10 12:30")
		op, err := s.ResizeVM(ctx, f.actor, f.tenant.ID, vm.ID, "medium")
		if err != nil {
			t.Fatal(err)
		}
		if op.Type != store.OpResize || op.State != store.OpQueued {
			t.Errorf("resize operation: %+v", op)
		}
		got := factsOf(t, s, f.tenant.ID, vm.ID)
		want := vmFacts{"medium", 2, 4096, 40, before.HostVCPUs + 1, before.HostMem + 3584, before.HostDis + 30, 1}
		if got != want {
			t.Errorf("after resize: %+v, want %+v", got, want)
		}
		if _, err := s.ResizeVM(ctx, f.actor, f.tenant.ID, vm.ID, "large"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a second resize while one is queued: %v, want conflict", err)
		}
		entries, _, _ := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "vm.resize"}, store.Page{})
		var results []string
		for _, e := range entries {
			results = append(results, e.Result+": "+e.Detail)
		}
		if len(results) < 2 || results[1] != "success: plan nano → medium" || results[0] != "failure: a resize is already queued for this VM; wait for it to finish" {
			t.Errorf("audit of resizes, newest first: %q", results)
		}

		recs, err := s.UsageRecords(ctx, f.tenant.ID, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		type rec struct {
			Item, Class, From, To string
		}
		var gotRecs []rec
		for _, r := range recs {
			to := ""
			if r.EndedAt != nil {
				to = r.EndedAt.Format("15:04")
			}
			gotRecs = append(gotRecs, rec{r.Item, r.Class, r.StartedAt.Format("15:04"), to})
		}
		wantRecs := []rec{{store.PlanItem(nano.ID), store.UsageRunning, "10:00", "12:30"}, {store.PlanItem(medium.ID), store.UsageRunning, "12:30", ""}}
		if diff := cmp.Diff(wantRecs, gotRecs); diff != "" {
			t.Errorf("usage records (-want +got):\n%s", diff)
		}
		// Hours 10 and 11 bill nano; 12 (the hour of the change) and 13 medium.
		billedNov := totals(t, s, f.tenant.ID, "2026-11", time.Date(2026, 11, 10, 14, 0, 0, 0, time.UTC))
		if diff := cmp.Diff(map[string]map[string]billed{"web": {pn.ID: {2, 1}, pm.ID: {2, 6}}}, billedNov, cmp.AllowUnexported(billed{})); diff != "" {
			t.Errorf("billed (-want +got):\n%s", diff)
		}

		// The provisioner carries it out; then the disk may not shrink,
		// while CPU and memory may.
		advance(t, s, vm.ID, store.VMRunning)
		if _, err := s.ResizeVM(ctx, f.actor, f.tenant.ID, vm.ID, "small"); !errors.Is(err, store.ErrInvalid) ||
			err.Error() != "the small plan has a 20 GiB disk and this VM's disk is 40 GiB; a disk can grow but never shrink" {
			t.Errorf("shrinking the disk: %v", err)
		}
		if _, err := s.ResizeVM(ctx, f.actor, f.tenant.ID, vm.ID, "slim"); err != nil {
			t.Fatalf("resize to fewer vCPUs and less memory: %v", err)
		}
		if got, want := factsOf(t, s, f.tenant.ID, vm.ID), (vmFacts{"slim", 1, 1024, 40, before.HostVCPUs, before.HostMem + 512, before.HostDis + 30, 2}); got != want {
			t.Errorf("after shrinking: %+v, want %+v", got, want)
		}
	})
}

// TestRebuildVMImage rebuilds VMs from another image: the record takes the
// new image and keeps its name and address; bad images change nothing.
func TestRebuildVMImage(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		addLAN(t, s)
		f := setup(t, s, "rebuilt")
		other := setup(t, s, "outsider")
		sum := func(n int) string { return "sha256:" + fmt.Sprintf("%064x", n) }
		img2, err := s.CreateImage(ctx, staff, store.ImageInput{Name: "debian-12-marked", OS: "Debian", Version: "12",
			SourceURL: "https://images.example.com/marked.qcow2", Checksum: sum(2), Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateImage(ctx, staff, store.ImageInput{Name: "retired", OS: "Debian", Version: "11",
			SourceURL: "https://images.example.com/old.qcow2", Checksum: sum(3)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateImage(ctx, staff, store.ImageInput{Name: "metal", OS: "Debian", Version: "12", Kind: store.ImageMachine,
			SourceURL: "https://images.example.com/metal.img.gz", Checksum: sum(4), Enabled: true}); err != nil {
			t.Fatal(err)
		}
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		ip, err := s.AllocateIP(ctx, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RebuildVM(ctx, f.actor, f.tenant.ID, vm.ID, img2.ID); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("rebuild while pending: %v", err)
		}
		advance(t, s, vm.ID, store.VMRunning)
		for _, image := range []string{"windows", "retired", "metal"} {
			_, err := s.RebuildVM(ctx, f.actor, f.tenant.ID, vm.ID, image)
			if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrInvalid) || e.Field != "image" {
				t.Errorf("rebuild from %s: %v, want invalid image", image, err)
			}
		}
		if _, err := s.RebuildVM(ctx, other.actor, other.tenant.ID, vm.ID, img2.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant's rebuild: %v", err)
		}
		if d, _ := s.GetVM(ctx, f.tenant.ID, vm.ID); d.ImageName != f.image.Name || len(d.Operations) != 0 {
			t.Errorf("refused rebuilds changed the VM: image %s, %d operations", d.ImageName, len(d.Operations))
		}

		if _, err := s.RebuildVM(ctx, f.actor, f.tenant.ID, vm.ID, "debian-12-marked"); err != nil {
			t.Fatal(err)
		}
		d, _ := s.GetVM(ctx, f.tenant.ID, vm.ID)
		if d.ImageID != img2.ID || d.Name != "web" || d.IP != ip.IP.String() || len(d.Operations) != 1 || d.Operations[0].Type != store.OpRebuild {
			t.Errorf("after rebuild from another image: image %s name %s ip %s (want %s) ops %+v", d.ImageName, d.Name, d.IP, ip.IP, d.Operations)
		}
		advance(t, s, vm.ID, store.VMRunning)
		// Plain rebuild keeps the image it has now.
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpRebuild); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.GetVM(ctx, f.tenant.ID, vm.ID); d.ImageID != img2.ID {
			t.Errorf("a plain rebuild changed the image to %s", d.ImageName)
		}
		entries, _, _ := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "vm.rebuild", Result: store.ResultSuccess}, store.Page{})
		if len(entries) != 2 || entries[1].Detail != "image debian-12 → debian-12-marked" || entries[0].Detail != "image debian-12-marked" {
			t.Errorf("rebuild audit: %+v", entries)
		}
	})
}

// TestResizeRacesOrders races a resize against an order from two stores
// on one PostgreSQL database, as two portals would, first where only the
// host's capacity admits one of them, then where only the tenant's quota
// does: exactly one wins every round, and the loser names its limit.
func TestResizeRacesOrders(t *testing.T) {
	url := pgtest.DSN(t)
	s1 := openStore(t, url)
	s2 := sameDB(t, url)
	ctx := context.Background()
	mustPlan(t, s1, "two", 2, 512, 10)
	race := func(t *testing.T, f fixture, vmID, name string) []error {
		t.Helper()
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, errs[0] = s1.ResizeVM(ctx, f.actor, f.tenant.ID, vmID, "two") }()
		go func() { defer wg.Done(); _, errs[1] = s2.CreateVM(ctx, f.actor, f.tenant.ID, order(f, name, "nano")) }()
		wg.Wait()
		return errs
	}
	const rounds = 4
	t.Run("host", func(t *testing.T) {
		f := bigTenant(t, s1, "host-racer")
		onlyHosts(t, s1)
		// 2 vCPU at 1.0×: each round starts with a nano VM on it and room
		// for one vCPU more.
		addHost(t, s1, store.HostInput{Name: "small-kvm", CPURatio: 1}, store.Facts{Cores: 2, MemoryMiB: 65536, DiskGiB: 1000})
		a, err := s1.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "a", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		advance(t, s1, a.ID, store.VMRunning)
		for i := range rounds {
			name := fmt.Sprintf("b%d", i)
			errs := race(t, f, a.ID, name)
			if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), store.ErrNoCapacity) {
				t.Fatalf("round %d: resize %v; order %v; want exactly one capacity refusal", i, errs[0], errs[1])
			}
			if h := hostOf(t, s1, f.tenant.ID, a.ID); h.AllocVCPUs != 2 {
				t.Errorf("round %d: host has %d vCPU allocated of 2", i, h.AllocVCPUs)
			}
			// Back to one nano VM beside a: undo whichever won.
			if errs[0] == nil {
				advance(t, s1, a.ID, store.VMRunning)
				if _, err := s1.ResizeVM(ctx, f.actor, f.tenant.ID, a.ID, "nano"); err != nil {
					t.Fatal(err)
				}
				advance(t, s1, a.ID, store.VMRunning)
				continue
			}
			vms, _, _ := s1.ListVMs(ctx, f.tenant.ID, store.Page{})
			for _, v := range vms {
				if v.Name != name {
					continue
				}
				advance(t, s1, v.ID, store.VMRunning)
				if _, err := s1.RequestAction(ctx, f.actor, f.tenant.ID, v.ID, store.OpDelete); err != nil {
					t.Fatal(err)
				}
				claimed := mustClaim(t, s1, "worker", time.Minute)
				if err := s1.ReleaseHostCapacity(ctx, claimed.ID); err != nil {
					t.Fatal(err)
				}
				if err := s1.MarkVMDeleted(ctx, claimed.ID, "worker", false); err != nil {
					t.Fatal(err)
				}
				if err := s1.FinishWork(ctx, claimed.ID, "worker", true, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	t.Run("quota", func(t *testing.T) {
		for i := range rounds {
			f := setup(t, s1, fmt.Sprintf("quota-racer-%d", i))
			if err := s1.SetTenantQuota(ctx, staff, f.tenant.ID, store.Quota{Instances: 10, VCPUs: 2, MemoryMiB: 1 << 20, DiskGiB: 10000, SSHKeys: 5}); err != nil {
				t.Fatal(err)
			}
			a, err := s1.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "a", "nano"))
			if err != nil {
				t.Fatal(err)
			}
			advance(t, s1, a.ID, store.VMRunning)
			errs := race(t, f, a.ID, "b")
			if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), store.ErrQuota) {
				t.Errorf("round %d: resize %v; order %v; want exactly one quota refusal", i, errs[0], errs[1])
			}
			if _, used, _ := s1.QuotaUsage(ctx, f.tenant.ID); used.VCPUs != 2 {
				t.Errorf("round %d: %d vCPU used, quota 2", i, used.VCPUs)
			}
			// Done with this tenant: its VMs leave the queue.
			for {
				vm, ok, err := s1.ClaimVM(ctx, "worker", time.Minute)
				if err != nil || !ok {
					break
				}
				if err := s1.SetVMState(ctx, vm.ID, "worker", store.VMRunning, ""); err != nil {
					t.Fatal(err)
				}
				for {
					op, ok, _ := s1.NextOperation(ctx, vm.ID)
					if !ok {
						break
					}
					_ = s1.StartOperation(ctx, op.ID)
					_ = s1.FinishOperation(ctx, op.ID, store.OpDone, "")
				}
				if err := s1.FinishWork(ctx, vm.ID, "worker", true, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
