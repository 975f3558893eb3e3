package portal

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// snapshotJSON is one snapshot of a VM's disk.
type snapshotJSON struct {
	ID          string     `json:"id"`
	VMID        string     `json:"vm_id"`
	Name        string     `json:"name"`
	State       string     `json:"state"`
	SizeBytes   int64      `json:"size_bytes"`
	QuotaGiB    int64      `json:"quota_gib"`
	Consistency string     `json:"consistency"`
	Message     string     `json:"message"`
	CreatedAt   time.Time  `json:"created_at"`
	ReadyAt     *time.Time `json:"ready_at"`
}

func toSnapshotJSON(s store.Snapshot) snapshotJSON {
	return snapshotJSON{ID: s.ID, VMID: s.VMID, Name: s.Name, State: s.State, SizeBytes: s.SizeBytes, QuotaGiB: s.QuotaGiB,
		Consistency: s.Consistency, Message: s.Message, CreatedAt: utc(s.CreatedAt), ReadyAt: utcPtr(s.ReadyAt)}
}

// snapshotTaken answers a snapshot request: the snapshot and the queued
// operation that takes it.
type snapshotTaken struct {
	Snapshot  snapshotJSON  `json:"snapshot"`
	Operation operationJSON `json:"operation"`
}

type snapshotCreateRequest struct {
	Name string `json:"name"`
}

// apiVMSnapshotCreate queues a snapshot of the VM's disk.
func (s *Server) apiVMSnapshotCreate(c *fiber.Ctx) error {
	var req snapshotCreateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	snap, op, err := s.store.CreateSnapshot(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id"), strings.Clone(req.Name))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(snapshotTaken{Snapshot: toSnapshotJSON(snap), Operation: toOperationJSON(op)})
}

// apiVMSnapshotList lists the VM's snapshots, newest first.
func (s *Server) apiVMSnapshotList(c *fiber.Ctx) error {
	snaps, err := s.store.ListSnapshots(c.UserContext(), who(c).User.Tenant(), c.Params("id"))
	if err != nil {
		return err
	}
	out := make([]snapshotJSON, len(snaps))
	for i, sn := range snaps {
		out[i] = toSnapshotJSON(sn)
	}
	return c.JSON(newItems(out))
}

// apiVMSnapshotGet returns one snapshot.
func (s *Server) apiVMSnapshotGet(c *fiber.Ctx) error {
	snap, err := s.store.GetSnapshot(c.UserContext(), who(c).User.Tenant(), c.Params("id"), c.Params("snapshotID"))
	if err != nil {
		return err
	}
	return c.JSON(toSnapshotJSON(snap))
}

// apiVMSnapshotDelete queues the deletion of a snapshot's volume.
func (s *Server) apiVMSnapshotDelete(c *fiber.Ctx) error {
	op, err := s.store.DeleteSnapshot(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id"), c.Params("snapshotID"))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(toOperationJSON(op))
}

// apiVMSnapshotRestore queues the restore of the VM's disk from a snapshot.
func (s *Server) apiVMSnapshotRestore(c *fiber.Ctx) error {
	op, err := s.store.RestoreSnapshot(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id"), c.Params("snapshotID"))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(toOperationJSON(op))
}
