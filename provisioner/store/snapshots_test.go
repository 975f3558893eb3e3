package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// finishOp carries out a VM's next operation as the provisioner would,
// returning it.
func finishOp(t *testing.T, s *store.Store, vmID string) store.Operation {
	t.Helper()
	ctx := context.Background()
	op, ok, err := s.NextOperation(ctx, vmID)
	if err != nil || !ok {
		t.Fatalf("next operation: %v %v", ok, err)
	}
	if err := s.StartOperation(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishOperation(ctx, op.ID, store.OpDone, "done"); err != nil {
		t.Fatal(err)
	}
	return op
}

func TestSnapshots(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "snaps")
		rival := setup(t, s, "rival")
		addLAN(t, s)
		vm := runningVM(t, s, f, "web")
		q := store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 5, Snapshots: 2, SnapshotGiB: 3 * vm.DiskGiB}
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, q); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct{ name, snap string }{
			{"empty", ""}, {"slash", "a/b"}, {"dash first", "-x"}, {"too long", strings.Repeat("a", 64)}, {"space", "a b"},
		} {
			if _, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, tc.snap); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: CreateSnapshot(%q) = %v, want ErrInvalid", tc.name, tc.snap, err)
			}
		}
		if _, _, err := s.CreateSnapshot(ctx, rival.actor, rival.tenant.ID, vm.ID, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant's VM: %v, want ErrNotFound", err)
		}
		if ss, _ := s.ListSnapshots(ctx, f.tenant.ID, vm.ID); len(ss) != 0 {
			t.Fatalf("refusals left snapshots: %+v", ss)
		}

		snap, op, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "before-upgrade")
		if err != nil {
			t.Fatal(err)
		}
		if op.Type != store.OpSnapshot || op.SnapshotID != snap.ID || snap.State != store.SnapshotCreating ||
			snap.Volume != store.SnapshotVolume(snap.ID) || snap.HostID == "" || snap.QuotaGiB != vm.DiskGiB {
			t.Fatalf("snapshot %+v, operation %+v", snap, op)
		}
		// One operation at a time per VM.
		if _, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "second"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second snapshot while the first is queued: %v, want ErrConflict", err)
		}
		if _, err := s.RestoreSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, snap.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("restore while taking: %v, want ErrConflict", err)
		}
		if got := finishOp(t, s, vm.ID); got.SnapshotID != snap.ID {
			t.Fatalf("provisioner sees operation %+v", got)
		}
		if _, err := s.RestoreSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, snap.ID); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("restore of a snapshot still being taken: %v, want ErrInvalidTransition", err)
		}
		if err := s.SnapshotTaken(ctx, snap.ID, 1<<30+1, store.ConsistencyCrash); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSnapshot(ctx, f.tenant.ID, vm.ID, snap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.SnapshotReady || got.SizeBytes != 1<<30+1 || got.QuotaGiB != 2 || got.ReadyAt == nil || got.Consistency != store.ConsistencyCrash {
			t.Errorf("taken snapshot %+v", got)
		}
		if _, err := s.GetSnapshot(ctx, rival.tenant.ID, vm.ID, snap.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant reads the snapshot: %v", err)
		}
		if _, err := s.ListSnapshots(ctx, rival.tenant.ID, vm.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant lists the snapshots: %v", err)
		}
		if _, err := s.RestoreSnapshot(ctx, rival.actor, rival.tenant.ID, vm.ID, snap.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant restores: %v", err)
		}
		_, used, err := s.QuotaUsage(ctx, f.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if used.Snapshots != 1 || used.SnapshotGiB != 2 {
			t.Errorf("usage %+v, want 1 snapshot of 2 GiB", used)
		}

		// A duplicate name is refused; quota: count and GiB.
		if _, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "before-upgrade"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate name: %v, want ErrConflict", err)
		}
		q.SnapshotGiB = 2 + vm.DiskGiB - 1
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, q); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "big")
		if !errors.Is(err, store.ErrQuota) || !strings.Contains(err.Error(), fmt.Sprintf("needs up to %d GiB; %d GiB left", vm.DiskGiB, vm.DiskGiB-1)) {
			t.Errorf("GiB quota: %v", err)
		}
		q.SnapshotGiB, q.Snapshots = 100, 1
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, q); err != nil {
			t.Fatal(err)
		}
		if _, _, err = s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "more"); !errors.Is(err, store.ErrQuota) || !strings.Contains(err.Error(), "allows 1 snapshots") {
			t.Errorf("count quota: %v", err)
		}

		// Restore, then delete.
		op, err = s.RestoreSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, snap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if op.Type != store.OpRestore || op.SnapshotID != snap.ID {
			t.Errorf("restore operation %+v", op)
		}
		if got, _ := s.GetSnapshot(ctx, f.tenant.ID, vm.ID, snap.ID); got.State != store.SnapshotRestoring {
			t.Errorf("restoring snapshot is %s", got.State)
		}
		finishOp(t, s, vm.ID)
		if err := s.SnapshotSettled(ctx, snap.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, "no-such-id"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete of an unknown snapshot: %v", err)
		}
		op, err = s.DeleteSnapshot(ctx, f.actor, f.tenant.ID, vm.ID, snap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if op.Type != store.OpSnapshotDelete {
			t.Errorf("delete operation %+v", op)
		}
		finishOp(t, s, vm.ID)
		if _, used, _ := s.QuotaUsage(ctx, f.tenant.ID); used.Snapshots != 1 {
			t.Errorf("quota given back before the volume is gone: %+v", used)
		}
		if err := s.SnapshotGone(ctx, snap.ID); err != nil {
			t.Fatal(err)
		}
		if ss, _ := s.ListSnapshots(ctx, f.tenant.ID, vm.ID); len(ss) != 0 {
			t.Errorf("deleted snapshot listed: %+v", ss)
		}
		if _, used, _ := s.QuotaUsage(ctx, f.tenant.ID); used.Snapshots != 0 || used.SnapshotGiB != 0 {
			t.Errorf("usage after delete %+v", used)
		}
		// The generic action endpoint cannot queue snapshot operations.
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpSnapshot); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RequestAction(snapshot) = %v, want ErrInvalid", err)
		}
		if store.ValidAction(store.OpRestore) {
			t.Error("restore is a valid generic action")
		}
	})
}

// TestConcurrentSnapshotsRespectQuota takes snapshots of many VMs at once:
// never more than the count quota succeed.
func TestConcurrentSnapshotsRespectQuota(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.DSN(t))
	f := setup(t, s, "snaprace")
	addLAN(t, s)
	const allowed, workers = 3, 12
	if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, store.Quota{Instances: 100, VCPUs: 100, MemoryMiB: 1 << 20, DiskGiB: 10000,
		SSHKeys: 5, Snapshots: allowed, SnapshotGiB: 10000}); err != nil {
		t.Fatal(err)
	}
	vms := make([]store.VM, workers)
	for i := range vms {
		vms[i] = runningVM(t, s, f, fmt.Sprintf("vm-%d", i))
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, errs[i] = s.CreateSnapshot(ctx, f.actor, f.tenant.ID, vms[i].ID, "snap")
		}()
	}
	close(start)
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrQuota):
			t.Errorf("unexpected error: %v", err)
		}
	}
	_, used, _ := s.QuotaUsage(ctx, f.tenant.ID)
	if ok != allowed || used.Snapshots != allowed {
		t.Errorf("%d snapshots succeeded, %d counted; want %d", ok, used.Snapshots, allowed)
	}
}
