package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// updateLeased changes a VM the caller holds the lease on; losing the lease
// is a conflict, so a worker that was presumed dead cannot overwrite the
// work of the one that took over.
// A state change records the usage it starts or ends in the same
// transaction, so a crash never loses or doubles billed time.
func (s *Store) updateLeased(ctx context.Context, vmID, owner string, upd map[string]any) error {
	upd["updated_at"] = now()
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&VM{}).Where("id = ? AND lease_owner = ?", vmID, owner).UpdateColumns(upd)
		if res.Error != nil {
			return fmt.Errorf("update vm %s: %w", vmID, res.Error)
		}
		if res.RowsAffected != 1 {
			return E(ErrConflict, "", "lease lost")
		}
		if state, ok := upd["state"].(string); ok {
			return s.meterVMState(tx, vmID, state)
		}
		return nil
	})
}

// SetVMState records the state the provisioner observed; message, when not
// empty, becomes the VM's last error (cleared otherwise).
func (s *Store) SetVMState(ctx context.Context, vmID, owner, state, message string) error {
	return s.updateLeased(ctx, vmID, owner, map[string]any{"state": state, "last_error": clean(message)})
}

// SetVMMAC records the MAC address given to the VM's network interface.
func (s *Store) SetVMMAC(ctx context.Context, vmID, owner, mac string) error {
	return s.updateLeased(ctx, vmID, owner, map[string]any{"mac": mac})
}

// MarkVMDeleted ends a VM's life once its domain, disk and address are gone:
// it stops counting against the quota and leaves the work queue. erased says
// whether the disk was overwritten before it was deleted.
func (s *Store) MarkVMDeleted(ctx context.Context, vmID, owner string, erased bool) error {
	ts := now()
	upd := map[string]any{"state": VMDeleted, "deleted_at": ts}
	if erased {
		upd["disk_erased_at"] = ts
	}
	return s.updateLeased(ctx, vmID, owner, upd)
}
