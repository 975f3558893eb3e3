package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// ErrNoCapacity classifies refusals because no host can take a VM.
var ErrNoCapacity = errors.New("no capacity")

// placementRounds bounds how often an order re-reads the hosts after losing
// every race for them; each round means other orders did get placed.
const placementRounds = 5

func need(vcpus, memoryMiB, diskGiB int64) capacity.Resources {
	return capacity.Resources{VCPUs: vcpus, MemoryMiB: memoryMiB, DiskGiB: diskGiB}
}

func noCapacity(err error) error { return E(ErrNoCapacity, "plan", err.Error()) }

// usableHosts reads the hosts that may take VMs, in capacity terms. It
// scans only the columns placement needs, by hand: at 10,000 hosts this is
// most of the cost of an order.
func usableHosts(tx *gorm.DB) ([]capacity.Host, error) {
	rows, err := tx.Raw(`SELECT id, name, cores, memory_mib, disk_gib, cpu_ratio, memory_ratio, disk_ratio,
	reserved_cores, reserved_memory_mib, reserved_disk_gib, alloc_vcpus, alloc_memory_mib, alloc_disk_gib
FROM hosts WHERE enabled = ? AND maintenance = ? AND state = ?`, true, false, HostReady).Rows()
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	defer rows.Close()
	var out []capacity.Host
	for rows.Next() {
		h := capacity.Host{Enabled: true, Ready: true}
		if err := rows.Scan(&h.ID, &h.Name, &h.Cores, &h.MemoryMiB, &h.DiskGiB, &h.CPURatio, &h.MemoryRatio, &h.DiskRatio,
			&h.Reserved.VCPUs, &h.Reserved.MemoryMiB, &h.Reserved.DiskGiB,
			&h.Allocated.VCPUs, &h.Allocated.MemoryMiB, &h.Allocated.DiskGiB); err != nil {
			return nil, fmt.Errorf("load hosts: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	return out, nil
}

// placeVM chooses a host for a VM and reserves its resources there, inside
// the caller's transaction. The reservation is one guarded UPDATE that
// re-checks the host is usable and the VM still fits, so concurrent orders
// never oversubscribe a host: on PostgreSQL a second order waits for the
// first one's row lock and then re-evaluates the guard against the new
// ledger; on SQLite transactions are serialised anyway. A host lost to a
// race is dropped and the next best tried; when none is left the hosts are
// read again.
func (s *Store) placeVM(tx *gorm.DB, n capacity.Resources) (string, error) {
	for range placementRounds {
		hosts, err := usableHosts(tx)
		if err != nil {
			return "", err
		}
		for tried := 0; ; tried++ {
			h, err := capacity.Best(hosts, n, s.Placement)
			if err != nil {
				if tried == 0 {
					return "", noCapacity(err)
				}
				break
			}
			ok, err := reserve(tx, h.ID, n)
			if err != nil {
				return "", err
			}
			if ok {
				return h.ID, nil
			}
			hosts = slices.DeleteFunc(hosts, func(x capacity.Host) bool { return x.ID == h.ID })
		}
	}
	hosts, err := usableHosts(tx)
	if err != nil {
		return "", err
	}
	if err := capacity.Fit(hosts, n); err != nil {
		return "", noCapacity(err)
	}
	return "", E(ErrConflict, "plan", "many orders are being placed at once; try again")
}

// reserveSQL adds a VM to a host's ledger only while the host is usable and
// the VM fits under its ratios. alloc + need + reserved <= physical × ratio
// (+ capacity.Epsilon) is the integer form of capacity.Host.Fits.
const reserveSQL = `UPDATE hosts SET
	alloc_vcpus = alloc_vcpus + ?, alloc_memory_mib = alloc_memory_mib + ?, alloc_disk_gib = alloc_disk_gib + ?, updated_at = ?
WHERE id = ? AND enabled = ? AND maintenance = ? AND state = ?
	AND alloc_vcpus + ? + reserved_cores <= cores * cpu_ratio + ?
	AND alloc_memory_mib + ? + reserved_memory_mib <= memory_mib * memory_ratio + ?
	AND alloc_disk_gib + ? + reserved_disk_gib <= disk_gib * disk_ratio + ?`

func reserve(tx *gorm.DB, hostID string, n capacity.Resources) (bool, error) {
	eps := capacity.Epsilon
	res := tx.Exec(reserveSQL, n.VCPUs, n.MemoryMiB, n.DiskGiB, now(),
		hostID, true, false, HostReady,
		n.VCPUs, eps, n.MemoryMiB, eps, n.DiskGiB, eps)
	if res.Error != nil {
		return false, fmt.Errorf("reserve host capacity: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ReleaseHostCapacity gives a deleted VM's resources back to its host and
// forgets the placement. It is idempotent: a VM without a host is left alone.
func (s *Store) ReleaseHostCapacity(ctx context.Context, vmID string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var vm VM
		if err := tx.Where("id = ?", vmID).Take(&vm).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("vm")
			}
			return fmt.Errorf("load vm: %w", err)
		}
		if vm.HostID == nil {
			return nil
		}
		// Clearing host_id first, guarded, makes a concurrent second release
		// of the same VM a no-op.
		res := tx.Model(&VM{}).Where("id = ? AND host_id = ?", vmID, *vm.HostID).Update("host_id", nil)
		if res.Error != nil {
			return fmt.Errorf("clear vm placement: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return nil
		}
		// Never below zero, even if the ledger was edited by hand.
		err := tx.Exec(`UPDATE hosts SET
	alloc_vcpus = CASE WHEN alloc_vcpus > ? THEN alloc_vcpus - ? ELSE 0 END,
	alloc_memory_mib = CASE WHEN alloc_memory_mib > ? THEN alloc_memory_mib - ? ELSE 0 END,
	alloc_disk_gib = CASE WHEN alloc_disk_gib > ? THEN alloc_disk_gib - ? ELSE 0 END,
	updated_at = ?
WHERE id = ?`, vm.VCPUs, vm.VCPUs, vm.MemoryMiB, vm.MemoryMiB, vm.DiskGiB, vm.DiskGiB, now(), *vm.HostID).Error
		if err != nil {
			return fmt.Errorf("release host capacity: %w", err)
		}
		return nil
	})
}

// PlanCapacity tells, for each plan (by id), whether a VM of it fits on some
// host now: nil if so, else the ErrNoCapacity error naming the binding
// resource. The answer may change before the order; the order re-checks.
func (s *Store) PlanCapacity(ctx context.Context, plans []Plan) (map[string]error, error) {
	hosts, err := usableHosts(s.db.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := make(map[string]error, len(plans))
	for _, p := range plans {
		if err := capacity.Fit(hosts, need(p.VCPUs, p.MemoryMiB, p.DiskGiB)); err != nil {
			out[p.ID] = noCapacity(err)
		} else {
			out[p.ID] = nil
		}
	}
	return out, nil
}
