package store

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// ResetVMPassword sets the console password of a running VM's default
// user, for a customer who lost their key: hash is its SHA-512 crypt hash
// (the password itself never reaches the store). In one transaction, under
// the same checks as a reboot, it records the hash, counts a new rescue
// generation, which gives the guest a new instance-id so cloud-init sets
// the password on its next boot, and queues that reboot. The audit entry
// says only that the password was reset.
func (s *Store) ResetVMPassword(ctx context.Context, a Actor, tenantID, vmID, hash string) (Operation, error) {
	if !strings.HasPrefix(hash, "$6$") || strings.ContainsAny(hash, " \t\r\n\"\\") {
		return Operation{}, E(ErrInvalid, "password", "the password hash must be a SHA-512 crypt hash")
	}
	return s.requestActionOn(ctx, a, "vm.password_reset", tenantID, vmID, OpReboot, func(tx *gorm.DB, _ Tenant, vm VM) (string, error) {
		if err := tx.Model(&VM{}).Where("id = ?", vm.ID).Updates(map[string]any{
			"rescue_password_hash": hash,
			"rescue_generation":    gorm.Expr("rescue_generation + 1"),
		}).Error; err != nil {
			return "", fmt.Errorf("record rescue password: %w", err)
		}
		return "console password reset; the VM reboots", nil
	}, nil)
}
