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

// TestCreateVMFromSnapshotOnTestDriver orders a VM from a snapshot: its
// disk is a copy of the snapshot's volume, not an overlay of the image,
// and a snapshot whose volume vanished fails the disk step saying so.
func TestCreateVMFromSnapshotOnTestDriver(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		src, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "src", Plan: "nano", Image: "tiny", SSHKeys: []string{r.key.ID}})
		if err != nil {
			t.Fatal(err)
		}
		r.waitState(src.ID, store.VMRunning)
		snap, _, err := r.st.CreateSnapshot(ctx, r.actor, r.tenant.ID, src.ID, "gold")
		if err != nil {
			t.Fatal(err)
		}
		r.act2Done(src.ID, store.OpSnapshot)
		r.waitState(src.ID, store.VMRunning)

		vm, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "copy", Plan: "small", Snapshot: snap.ID, SSHKeys: []string{r.key.ID}})
		if err != nil {
			t.Fatal(err)
		}
		d := r.waitState(vm.ID, store.VMRunning)
		if st := lastStep(d, "disk"); st.State != store.StepDone || !strings.Contains(st.Message, "Copying the snapshot into a 20 GiB disk") {
			t.Errorf("disk step %+v", st)
		}
		if d.ImageID != r.image.ID {
			t.Errorf("image %s, want the snapshot's VM's %s", d.ImageID, r.image.ID)
		}
		hv, err := r.pool.Conn(ctx, r.host)
		if err != nil {
			t.Fatal(err)
		}
		base := "fibrix-base-" + strings.TrimPrefix(r.image.Checksum, "sha256:")[:16] + ".qcow2"
		// The source's disk is an overlay of the base image; the copy is not.
		if _, err := hv.EnsureDisk(ctx, r.host.StoragePool, "fibrix-"+src.ID+".qcow2", base, 10); err != nil {
			t.Errorf("source disk is not an overlay of the image: %v", err)
		}
		if _, err := hv.EnsureDisk(ctx, r.host.StoragePool, "fibrix-"+vm.ID+".qcow2", base, 20); !errors.Is(err, hypervisor.ErrInvalid) {
			t.Errorf("disk of the VM from the snapshot: %v, want a volume that is not an overlay (a copy)", err)
		}
		// The snapshot itself is untouched and may go now.
		if got, _ := r.st.GetSnapshot(ctx, r.tenant.ID, src.ID, snap.ID); got.State != store.SnapshotReady {
			t.Errorf("snapshot after the copy: %+v", got)
		}

		// A snapshot volume removed behind the provisioner's back.
		if _, err := hv.DeleteDisk(ctx, r.host.StoragePool, snap.Volume); err != nil {
			t.Fatal(err)
		}
		lost, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "lost", Plan: "nano", Snapshot: snap.ID, SSHKeys: []string{r.key.ID}})
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			d, err := r.st.GetVM(ctx, "", lost.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st := lastStep(d, "disk"); st.State == store.StepFailed {
				if !strings.Contains(st.Detail, "snapshot's volume is gone") {
					t.Errorf("failed disk step: %+v", st)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("disk step of a VM from a vanished snapshot: %+v", lastStep(d, "disk"))
			}
		}
	})
}
