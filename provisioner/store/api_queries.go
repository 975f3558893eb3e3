package store

import (
	"context"
	"fmt"
)

// VMKeyIDs returns, for each of the given VMs, the ids of the SSH keys it was
// given that still exist, ordered like GetVM orders them (by key name). It
// lets a list of VMs show their keys in one query instead of one per VM.
func (s *Store) VMKeyIDs(ctx context.Context, vmIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(vmIDs))
	if len(vmIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.WithContext(ctx).Table("vm_ssh_keys").
		Joins("JOIN ssh_keys ON ssh_keys.id = vm_ssh_keys.ssh_key_id").
		Where("vm_ssh_keys.vm_id IN ?", vmIDs).
		Select("vm_ssh_keys.vm_id, vm_ssh_keys.ssh_key_id").
		Order("ssh_keys.name, ssh_keys.id").Rows()
	if err != nil {
		return nil, fmt.Errorf("load vm keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var vm, key string
		if err := rows.Scan(&vm, &key); err != nil {
			return nil, fmt.Errorf("load vm keys: %w", err)
		}
		out[vm] = append(out[vm], key)
	}
	return out, rows.Err()
}
