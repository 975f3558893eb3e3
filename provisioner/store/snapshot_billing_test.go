package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// readySnapshot takes a snapshot of vm as the provisioner would and records
// it ready at sizeBytes.
func readySnapshot(t *testing.T, s *store.Store, f fixture, vm store.VM, name string, sizeBytes int64) store.Snapshot {
	t.Helper()
	ctx := context.Background()
	snap, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	finishOp(t, s, vm.ID)
	if err := s.SnapshotTaken(ctx, snap.ID, sizeBytes, store.ConsistencyStopped); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestSnapshotBilling bills snapshots per GiB-hour from ready until their
// volume is gone, deleted on its own or with its VM, beside an unchanged VM
// line, and words their invoice lines.
func TestSnapshotBilling(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := &testClock{}
		s.SetClock(clock.now)
		clock.set("2026-11-01 00:00")
		addLAN(t, s)
		f := setup(t, s, "Snapshotted")
		q := store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 5, Snapshots: 5, SnapshotGiB: 500}
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, q); err != nil {
			t.Fatal(err)
		}
		nano, err := s.GetPlan(ctx, "nano")
		if err != nil {
			t.Fatal(err)
		}
		pvm := mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "")
		// €0.001 per GiB-hour, then from the 2nd up to €0.50 a month per snapshot.
		p1 := mustPrice(t, s, store.ItemSnapshotGiB, 1000, 0, true, "")
		p2 := mustPrice(t, s, store.ItemSnapshotGiB, 1000, 50, true, "2026-11-02 00:00")
		if _, err := s.SetPrice(ctx, staff, store.PriceInput{Item: "snapshot-tib", HourlyMicros: 1}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("price for an unknown item: %v, want ErrInvalid", err)
		}

		vm := runningVM(t, s, f, "web")
		// Being taken does not bill; ready at 11.5 GiB bills 12 GiB.
		clock.set("2026-11-01 00:30")
		daily, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "daily")
		if err != nil {
			t.Fatal(err)
		}
		finishOp(t, s, vm.ID)
		clock.set("2026-11-01 01:00")
		if err := s.SnapshotTaken(ctx, daily.ID, 23<<29, store.ConsistencyStopped); err != nil {
			t.Fatal(err)
		}
		weekly := readySnapshot(t, s, f, vm, "weekly", 2<<30)
		// A failed take never bills.
		broken, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "broken")
		if err != nil {
			t.Fatal(err)
		}
		finishOp(t, s, vm.ID)
		if err := s.SnapshotFailed(ctx, broken.ID, "disk full"); err != nil {
			t.Fatal(err)
		}

		// weekly deleted at 11:00: 10 hours.
		clock.set("2026-11-01 11:00")
		if _, err := s.DeleteSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, weekly.ID); err != nil {
			t.Fatal(err)
		}
		finishOp(t, s, vm.ID)
		if err := s.SnapshotGone(ctx, weekly.ID); err != nil {
			t.Fatal(err)
		}

		// The VM is deleted on the 10th; the provisioner deletes its
		// snapshots' volumes first, which ends their billing.
		clock.set("2026-11-10 00:00")
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpDelete); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{daily.ID, broken.ID} {
			if err := s.SnapshotGone(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		advance(t, s, vm.ID, store.VMDeleted)

		clock.set("2026-12-01 00:00")
		got := totals(t, s, f.tenant.ID, "2026-11", clock.now())
		want := map[string]map[string]billed{
			"web":        {pvm.ID: {216, 130}},                // 216 h × €0.006 = €1.296
			"web/daily":  {p1.ID: {23, 28}, p2.ID: {192, 50}}, // 12 GiB × 23 h × €0.001 = €0.276; 12 × 192 h = €2.304, capped at €0.50
			"web/weekly": {p1.ID: {10, 2}},                    // 2 GiB × 10 h × €0.001 = €0.02
		}
		if !sameBilled(got, want) {
			t.Errorf("November: %v, want %v", got, want)
		}
		rows, err := s.UsageTotals(ctx, f.tenant.ID, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		units := map[string]int64{}
		for _, r := range rows {
			units[r.ResourceKind+" "+r.ResourceName] = r.Units
		}
		if want := map[string]int64{"vm web": 1, "snapshot web/daily": 12, "snapshot web/weekly": 2}; !sameUnits(units, want) {
			t.Errorf("units %v, want %v", units, want)
		}

		if _, err := s.IssueInvoices(ctx, staff, "2026-11", f.tenant.ID); err != nil {
			t.Fatal(err)
		}
		list, _, err := s.ListInvoices(ctx, f.tenant.ID, store.Page{PerPage: 10})
		if err != nil || len(list) != 1 {
			t.Fatalf("invoices %v %v", list, err)
		}
		inv, err := s.GetInvoice(ctx, f.tenant.ID, list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		var descs []string
		for _, l := range inv.Lines {
			descs = append(descs, l.Description)
		}
		all := strings.Join(descs, "\n")
		for _, w := range []string{
			"VM web (plan " + nano.Name + "): 216 h × €0.006",
			"Snapshot web/daily: 12 GiB × 23 h × €0.001 per GiB",
			"Snapshot web/daily: 12 GiB × 192 h × €0.001 per GiB, capped at €0.50 a month",
			"Snapshot web/weekly: 2 GiB × 10 h × €0.001 per GiB",
		} {
			if !strings.Contains(all, w) {
				t.Errorf("invoice lines lack %q:\n%s", w, all)
			}
		}
		if inv.SubtotalMinor != 130+28+50+2 {
			t.Errorf("subtotal %d, want %d", inv.SubtotalMinor, 130+28+50+2)
		}
	})
}

func sameUnits(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
