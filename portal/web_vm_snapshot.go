package portal

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// fillSnapshots adds the VM's snapshots and the snapshot quota to its page.
func (s *Server) fillSnapshots(c *fiber.Ctx, v *views.VMDetailView) error {
	tenant := who(c).User.Tenant()
	snaps, err := s.store.ListSnapshots(c.UserContext(), tenant, v.VM.ID)
	if err != nil {
		return err
	}
	limits, used, err := s.store.QuotaUsage(c.UserContext(), tenant)
	if err != nil {
		return err
	}
	v.Snapshots = views.VMSnapshots{Used: used.Snapshots, Limit: limits.Snapshots, UsedGiB: used.SnapshotGiB, LimitGiB: limits.SnapshotGiB}
	for _, sn := range snaps {
		v.Snapshots.Items = append(v.Snapshots.Items, views.SnapshotRow{ID: sn.ID, Name: sn.Name, State: sn.State,
			Consistency: sn.Consistency, Message: sn.Message, SizeBytes: sn.SizeBytes, CreatedAt: sn.CreatedAt})
	}
	return nil
}

// webVMSnapshotCreate queues a snapshot; a refusal (name, quota, state)
// shows the page again with the name as typed and the reason.
func (s *Server) webVMSnapshotCreate(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	typed := c.FormValue("name")
	snap, _, err := s.store.CreateSnapshot(c.UserContext(), s.actor(c), who(c).User.Tenant(), v.VM.ID, typed)
	if err != nil {
		errs, err := formFailure(c, err, "name")
		if err != nil {
			return err
		}
		v.Page, v.Errors = s.page(c, v.VM.Name, "vms"), errs
		v.Snapshots.Input = typed
		return s.render(c, views.VMDetail(v))
	}
	return s.redirect(c, vmPagePath(v.VM.ID), "success", "Snapshot "+snap.Name+" is being taken.")
}

// webVMSnapshotRestore queues the restore of the VM's disk from a snapshot.
func (s *Server) webVMSnapshotRestore(c *fiber.Ctx) error {
	return s.webVMSnapshotAction(c, s.store.RestoreSnapshot, "The VM is being restored from the snapshot.")
}

// webVMSnapshotDelete queues the deletion of a snapshot.
func (s *Server) webVMSnapshotDelete(c *fiber.Ctx) error {
	return s.webVMSnapshotAction(c, s.store.DeleteSnapshot, "The snapshot is being deleted.")
}

type snapshotAction func(ctx context.Context, a store.Actor, tenantID, vmID, snapID string) (store.Operation, error)

func (s *Server) webVMSnapshotAction(c *fiber.Ctx, act snapshotAction, done string) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	if _, err := act(c.UserContext(), s.actor(c), who(c).User.Tenant(), v.VM.ID, c.Params("snapshotID")); err != nil {
		errs, err := formFailure(c, err)
		if err != nil {
			return err
		}
		v.Page, v.Errors = s.page(c, v.VM.Name, "vms"), errs
		return s.render(c, views.VMDetail(v))
	}
	return s.redirect(c, vmPagePath(v.VM.ID), "success", done)
}
