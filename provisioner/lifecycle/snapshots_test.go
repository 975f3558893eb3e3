package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestSnapshotsOnTestDriver takes, restores and deletes a snapshot of a
// running VM through the provisioner, and deletes a VM with a snapshot:
// the snapshot's volume goes with it and its quota is given back.
func TestSnapshotsOnTestDriver(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		vm, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "snap", Plan: "nano", Image: "tiny", SSHKeys: []string{r.key.ID}})
		if err != nil {
			t.Fatal(err)
		}
		r.waitState(vm.ID, store.VMRunning)
		hv, err := r.pool.Conn(ctx, r.host)
		if err != nil {
			t.Fatal(err)
		}
		exists := func(volume string) bool {
			t.Helper()
			err := hv.ReplaceVolume(ctx, r.host.StoragePool, volume, "fibrix-probe.qcow2")
			if err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
				t.Fatal(err)
			}
			_, _ = hv.DeleteDisk(ctx, r.host.StoragePool, "fibrix-probe.qcow2")
			return err == nil
		}

		snap, _, err := r.st.CreateSnapshot(ctx, r.actor, r.tenant.ID, vm.ID, "first")
		if err != nil {
			t.Fatal(err)
		}
		r.act2Done(vm.ID, store.OpSnapshot)
		got, err := r.st.GetSnapshot(ctx, r.tenant.ID, vm.ID, snap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.SnapshotReady || got.SizeBytes <= 0 || got.Consistency != store.ConsistencyStopped || !exists(snap.Volume) {
			t.Fatalf("snapshot after the take: %+v", got)
		}
		d := r.waitState(vm.ID, store.VMRunning)
		if s := r.domain(vm.ID); s != hypervisor.Running {
			t.Errorf("domain is %s after the snapshot", s)
		}
		if st := lastStep(d, "snapshot"); st.State != store.StepDone {
			t.Errorf("snapshot step %+v", st)
		}
		// libvirt's test driver has no backup job: the guest is shut down
		// for the copy, and the timeline says why.
		if st := lastStep(d, "stop"); !strings.Contains(st.Message, "its host cannot copy a running VM's disk") {
			t.Errorf("stop step for the snapshot %+v; want the reason it was not taken live", st)
		}

		if _, err := r.st.RestoreSnapshot(ctx, r.actor, r.tenant.ID, vm.ID, snap.ID); err != nil {
			t.Fatal(err)
		}
		r.act2Done(vm.ID, store.OpRestore)
		r.waitState(vm.ID, store.VMRunning)
		if got, _ := r.st.GetSnapshot(ctx, r.tenant.ID, vm.ID, snap.ID); got.State != store.SnapshotReady || got.Message != "" {
			t.Errorf("snapshot after the restore: %+v", got)
		}

		if _, err := r.st.DeleteSnapshot(ctx, r.actor, r.tenant.ID, vm.ID, snap.ID); err != nil {
			t.Fatal(err)
		}
		r.act2Done(vm.ID, store.OpSnapshotDelete)
		if _, err := r.st.GetSnapshot(ctx, r.tenant.ID, vm.ID, snap.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted snapshot: %v", err)
		}
		if exists(snap.Volume) {
			t.Error("the deleted snapshot's volume is still there")
		}

		// A VM's snapshots go with it.
		r.waitState(vm.ID, store.VMRunning)
		kept, _, err := r.st.CreateSnapshot(ctx, r.actor, r.tenant.ID, vm.ID, "kept")
		if err != nil {
			t.Fatal(err)
		}
		r.act2Done(vm.ID, store.OpSnapshot)
		r.waitState(vm.ID, store.VMRunning)
		r.act(vm.ID, store.OpDelete)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := r.st.GetVM(ctx, "", vm.ID); errors.Is(err, store.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("VM was not deleted")
			}
		}
		if exists(kept.Volume) {
			t.Error("a deleted VM's snapshot volume is still there")
		}
		if _, used, _ := r.st.QuotaUsage(ctx, r.tenant.ID); used.Snapshots != 0 || used.SnapshotGiB != 0 {
			t.Errorf("snapshot usage after the VM is deleted: %+v", used)
		}
	})
}
