package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/fibrixcloud/fibrix/provisioner/engine"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Snapshots of a VM's disk, kept as volumes in its host's pool. A running
// guest keeps running while its disk is copied: QEMU's backup job copies
// the disk as it was when the snapshot began, with the file systems frozen
// for that moment when the guest agent answers (crash-consistent
// otherwise). On a host that cannot copy a running guest's disk, the guest
// is shut down (ACPI, forced off after the timeout) for the copy and
// started again. A stopped VM's disk is simply copied. A restore needs the
// guest off: its disk is replaced. Every step can run again: a copy
// replaces an earlier partial one, and a restore copies from the snapshot,
// which it never changes.

// snapshotOp carries out a take, restore or delete of one snapshot and
// returns the VM's new state.
func (r *Reconciler) snapshotOp(ctx context.Context, p *pass, op store.Operation) (string, error) {
	snap, err := r.st.GetSnapshot(ctx, "", p.vm.ID, op.SnapshotID)
	if err != nil {
		return "", err
	}
	if snap.HostID != p.host.ID {
		return "", fmt.Errorf("snapshot %s is on another host than the VM", snap.Name)
	}
	pool, disk := p.host.StoragePool, diskName(p.vm.ID)
	switch op.Type {
	case store.OpSnapshotDelete:
		return "", r.step(ctx, p, "snapshot", "Deleting snapshot "+snap.Name, func(ctx context.Context) error {
			if _, err := p.hv.DeleteDisk(ctx, pool, snap.Volume); err != nil {
				return err
			}
			return r.st.SnapshotGone(ctx, snap.ID)
		})
	case store.OpSnapshot:
		done, why, err := r.liveSnapshot(ctx, p, snap)
		if err != nil || done {
			return "", err
		}
		wasActive, err := r.stopFor(ctx, p, "Shutting down the VM for snapshot "+snap.Name+why)
		if err != nil {
			return "", err
		}
		err = r.step(ctx, p, "snapshot", "Copying the disk into snapshot "+snap.Name, func(ctx context.Context) error {
			size, err := p.hv.CopyVolume(ctx, pool, disk, snap.Volume)
			if err != nil {
				return err
			}
			return r.st.SnapshotTaken(ctx, snap.ID, size, store.ConsistencyStopped)
		})
		if err != nil {
			return "", err
		}
		return r.startAgain(ctx, p, wasActive)
	case store.OpRestore:
		if _, err := r.stopFor(ctx, p, "Shutting down the VM to restore snapshot "+snap.Name); err != nil {
			return "", err
		}
		err := r.step(ctx, p, "restore", "Restoring the disk from snapshot "+snap.Name, func(ctx context.Context) error {
			return p.hv.ReplaceVolume(ctx, pool, snap.Volume, disk)
		})
		if err != nil {
			return store.VMError, err
		}
		return r.startAgain(ctx, p, p.vm.DesiredState == store.VMRunning)
	}
	return "", fmt.Errorf("unknown snapshot operation %q", op.Type)
}

// liveSnapshot takes a snapshot of a running guest's disk without stopping
// it. It reports false, with nothing done, when the guest is not running
// or its host cannot copy a running guest's disk (why says so, for the
// next step's message): the caller copies the disk with the guest off.
func (r *Reconciler) liveSnapshot(ctx context.Context, p *pass, snap store.Snapshot) (done bool, why string, err error) {
	name := domainName(p.vm.ID)
	s, err := p.hv.State(ctx, name)
	if err != nil {
		return false, "", &engine.StepError{Step: "observe", Err: err}
	}
	if !s.Active() {
		return false, "", nil
	}
	live := true
	err = r.step(ctx, p, "snapshot", "Copying the running VM's disk into snapshot "+snap.Name, func(ctx context.Context) error {
		c, err := p.hv.LiveSnapshot(ctx, name, p.host.StoragePool, diskName(p.vm.ID), snap.Volume)
		switch {
		case errors.Is(err, hypervisor.ErrLiveUnsupported), errors.Is(err, hypervisor.ErrNotRunning):
			// The guest stopped meanwhile, or the host's libvirt or QEMU
			// has no backup job: copy it with the guest off.
			p.log.Info("snapshot copied with the guest off", "snapshot", snap.ID, "reason", err)
			live = false
			if errors.Is(err, hypervisor.ErrLiveUnsupported) {
				why = ": its host cannot copy a running VM's disk"
			}
			return nil
		case err != nil:
			return err
		}
		consistency := store.ConsistencyCrash
		if c.Frozen {
			consistency = store.ConsistencyFrozen
		} else if c.FreezeError != "" {
			p.log.Info("snapshot taken crash-consistent", "snapshot", snap.ID, "reason", c.FreezeError)
		}
		return r.st.SnapshotTaken(ctx, snap.ID, c.SizeBytes, consistency)
	})
	return live && err == nil, why, err
}

// stopFor shuts the guest down for a disk copy and reports whether it was running.
func (r *Reconciler) stopFor(ctx context.Context, p *pass, msg string) (bool, error) {
	s, err := p.hv.State(ctx, domainName(p.vm.ID))
	if err != nil {
		return false, err
	}
	if !s.Active() {
		return false, nil
	}
	return true, r.step(ctx, p, "stop", msg, func(ctx context.Context) error { return r.stop(ctx, p) })
}

func (r *Reconciler) startAgain(ctx context.Context, p *pass, start bool) (string, error) {
	if !start {
		return store.VMStopped, nil
	}
	if err := r.step(ctx, p, "start", "Starting the VM", func(ctx context.Context) error { return r.startAndWait(ctx, p) }); err != nil {
		return store.VMError, err
	}
	return store.VMRunning, nil
}

// settleSnapshot records what became of an operation's snapshot once the
// operation ended: a failed take leaves it in error (its partial volume
// goes when it is deleted), a restore or a failed delete leaves it ready.
func (r *Reconciler) settleSnapshot(ctx context.Context, op store.Operation, opErr error) error {
	if op.SnapshotID == "" {
		return nil
	}
	var err error
	switch {
	case op.Type == store.OpSnapshot && opErr != nil:
		err = r.st.SnapshotFailed(ctx, op.SnapshotID, "the snapshot could not be taken: "+opErr.Error())
	case op.Type == store.OpRestore && opErr != nil:
		err = r.st.SnapshotSettled(ctx, op.SnapshotID, "the last restore failed: "+opErr.Error())
	case op.Type == store.OpRestore:
		err = r.st.SnapshotSettled(ctx, op.SnapshotID, "")
	case op.Type == store.OpSnapshotDelete && opErr != nil:
		err = r.st.SnapshotSettled(ctx, op.SnapshotID, "the snapshot could not be deleted: "+opErr.Error())
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil // gone already
	}
	return err
}

// deleteSnapshots removes a deleted VM's snapshots with it: their volumes
// are erased and deleted, and their quota given back.
func (r *Reconciler) deleteSnapshots(ctx context.Context, p *pass) error {
	snaps, err := r.st.ListSnapshots(ctx, "", p.vm.ID)
	if err != nil || len(snaps) == 0 {
		return err
	}
	return r.step(ctx, p, "snapshots", fmt.Sprintf("Erasing and deleting %d snapshots", len(snaps)), func(ctx context.Context) error {
		for _, s := range snaps {
			if _, err := p.hv.DeleteDisk(ctx, p.host.StoragePool, s.Volume); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
				return err
			}
			if err := r.st.SnapshotGone(ctx, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
}

// diskFromSnapshot makes a new VM's disk a copy of a snapshot's volume,
// grown to the VM's plan, and returns its path. A disk already there is
// the copy of an earlier pass and is kept: the guest may have booted from
// it. The snapshot's volume is never changed.
func (r *Reconciler) diskFromSnapshot(ctx context.Context, p *pass, snapID string) (string, error) {
	pool, disk := p.host.StoragePool, diskName(p.vm.ID)
	path, err := p.hv.GrowDisk(ctx, pool, disk, p.vm.DiskGiB)
	if !errors.Is(err, hypervisor.ErrNotFound) {
		return path, err
	}
	if _, err := p.hv.CopyVolume(ctx, pool, store.SnapshotVolume(snapID), disk); err != nil {
		if errors.Is(err, hypervisor.ErrNotFound) {
			return "", fmt.Errorf("the snapshot's volume is gone from host %s: %w", p.host.Name, err)
		}
		return "", err
	}
	return p.hv.GrowDisk(ctx, pool, disk, p.vm.DiskGiB)
}
