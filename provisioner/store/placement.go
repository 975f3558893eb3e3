package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// ErrNoCapacity classifies refusals because no host can take a VM.
var ErrNoCapacity = errors.New("no capacity")

// placementRounds bounds how often an order re-reads the hosts after losing
// every race for them; each round means other orders did get placed.
const placementRounds = 5

// ledgerTries bounds how many hosts an order tries from the ledger before
// it reads the hosts table instead.
const ledgerTries = 8

func need(vcpus, memoryMiB, diskGiB int64) capacity.Resources {
	return capacity.Resources{VCPUs: vcpus, MemoryMiB: memoryMiB, DiskGiB: diskGiB}
}

func noCapacity(err error) error { return E(ErrNoCapacity, "plan", err.Error()) }

// placeVM chooses a host for a VM and reserves its resources there, inside
// the caller's transaction. The reservation is one guarded UPDATE that
// re-checks the host is usable and the VM still fits, so concurrent orders
// never oversubscribe a host, whichever process they run in: on PostgreSQL
// a second order waits for the first one's row lock and then re-evaluates
// the guard against the new ledger; on SQLite transactions are serialised
// anyway.
//
// The host is chosen from the Store's in-memory ledger; the reservation
// also does nothing unless the hosts version is still the one the ledger
// reflects, so no order is placed from a ledger that missed a host change.
// A ledger behind the version is brought up to date and asked again. A
// refusal by the guard means the ledger did not know of reservations made
// elsewhere (another process reserved there): that host is read again and
// the next best tried. When the ledger has no host, or too many were refused, the
// order is placed from the hosts table as read now, so every refusal is
// explained by the database's figures, not the ledger's.
func (s *Store) placeVM(tx *gorm.DB, n capacity.Resources) (string, error) {
	l := s.ledger
	synced := false
	if !l.fresh() {
		if err := l.sync(tx); err != nil {
			return "", err
		}
		synced = true
	}
	for range ledgerTries {
		p, ok := l.propose(n, s.Placement)
		if !ok {
			if synced {
				break
			}
			// The ledger may not know of room made since it was read.
			if err := l.sync(tx); err != nil {
				return "", err
			}
			synced = true
			continue
		}
		r, err := l.reserveIfCurrent(tx, p, n)
		l.settle(p.hostID, n, r.allocated)
		switch {
		case err != nil:
			return "", err
		case r.allocated != nil:
			return p.hostID, nil
		case r.behind:
			err = l.sync(tx)
			synced = true
		default:
			err = l.refresh(tx, p.hostID)
		}
		if err != nil {
			return "", err
		}
	}
	return s.placeFromTable(tx, l, n)
}

// placeFromTable is placement from the hosts as read now. A host lost to a
// race is dropped and the next best tried; when none is left the hosts are
// read again. Each read also refreshes the ledger.
func (s *Store) placeFromTable(tx *gorm.DB, l *hostLedger, n capacity.Resources) (string, error) {
	read := func() ([]capacity.Host, error) {
		version, epoch, err := readHostsVersion(tx)
		if err != nil {
			return nil, err
		}
		hosts, err := usableHosts(tx)
		if err != nil {
			return nil, err
		}
		l.reload(hosts, version, epoch)
		return hosts, nil
	}
	for range placementRounds {
		hosts, err := read()
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
			allocated, err := reserve(tx, h.ID, n)
			if err != nil {
				return "", err
			}
			if allocated != nil {
				l.observed(h.ID, *allocated)
				return h.ID, nil
			}
			hosts = slices.DeleteFunc(hosts, func(x capacity.Host) bool { return x.ID == h.ID })
		}
	}
	hosts, err := read()
	if err != nil {
		return "", err
	}
	if err := capacity.Fit(hosts, n); err != nil {
		return "", noCapacity(err)
	}
	return "", E(ErrConflict, "plan", "many orders are being placed at once; try again")
}

// reserveUpdate adds a VM to a host's ledger only while the host is usable
// and the VM fits under its ratios. alloc + need + reserved <= physical ×
// ratio (+ capacity.Epsilon) is the integer form of capacity.Host.Fits.
// Its placeholders are numbered, which PostgreSQL and SQLite both read, so
// it goes to the connection as written (see placementQuery).
const reserveUpdate = `UPDATE hosts SET
	alloc_vcpus = alloc_vcpus + $1, alloc_memory_mib = alloc_memory_mib + $2, alloc_disk_gib = alloc_disk_gib + $3, updated_at = $4
WHERE id = $5 AND enabled = $6 AND maintenance = $7 AND state = $8
	AND alloc_vcpus + $1 + reserved_cores <= cores * cpu_ratio + $9
	AND alloc_memory_mib + $2 + reserved_memory_mib <= memory_mib * memory_ratio + $9
	AND alloc_disk_gib + $3 + reserved_disk_gib <= disk_gib * disk_ratio + $9`

// reserveSQL returns the host's new ledger, or no row when the guard
// refused.
const reserveSQL = reserveUpdate + `
RETURNING alloc_vcpus, alloc_memory_mib, alloc_disk_gib`

// reserveIfCurrentSQL also refuses unless the hosts version is still the
// one the ledger reflects, so a decision is never taken on a ledger that
// missed a change; reading the version separately would cost a statement
// per order.
const reserveIfCurrentSQL = reserveUpdate + `
	AND EXISTS (SELECT 1 FROM host_ledger WHERE id = 1 AND version = $10 AND epoch = $11)
RETURNING alloc_vcpus, alloc_memory_mib, alloc_disk_gib`

// reserveArgs are reserveUpdate's arguments, and room for the two of
// reserveIfCurrentSQL.
func reserveArgs(hostID string, n capacity.Resources) []any {
	args := make([]any, 9, 11)
	args[0], args[1], args[2], args[3] = n.VCPUs, n.MemoryMiB, n.DiskGiB, now()
	args[4], args[5], args[6], args[7] = hostID, true, false, HostReady
	args[8] = capacity.Epsilon
	return args
}

// placementQuery runs one of placement's own statements on tx's
// connection as written, past GORM's statement builder and callbacks:
// these run once per order and were a good part of its cost. It is still
// logged as GORM would (failures, slow statements).
func placementQuery(tx *gorm.DB, query string, args ...any) (*sql.Rows, error) {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	begin := time.Now()
	rows, err := tx.Statement.ConnPool.QueryContext(ctx, query, args...)
	tx.Logger.Trace(ctx, begin, func() (string, int64) { return query, -1 }, err)
	return rows, err
}

// reservation is what a reservation attempt found.
type reservation struct {
	allocated *capacity.Resources // the host's ledger after it; nil if refused
	behind    bool                // refused because the ledger is behind the hosts version
}

// reserve returns the host's ledger after adding n, or nil when the guard
// refused.
func reserve(tx *gorm.DB, hostID string, n capacity.Resources) (*capacity.Resources, error) {
	return scanReserved(placementQuery(tx, reserveSQL, reserveArgs(hostID, n)...))
}

// reserveIfCurrent reserves n for a proposal. A refusal is told apart
// from a ledger behind the hosts version by reading the version.
func (l *hostLedger) reserveIfCurrent(tx *gorm.DB, p proposal, n capacity.Resources) (reservation, error) {
	args := append(reserveArgs(p.hostID, n), p.version, p.epoch)
	got, err := scanReserved(placementQuery(tx, reserveIfCurrentSQL, args...))
	if err != nil || got != nil {
		return reservation{allocated: got}, err
	}
	version, epoch, err := readHostsVersion(tx)
	if err != nil {
		return reservation{}, err
	}
	return reservation{behind: version != p.version || epoch != p.epoch}, nil
}

func scanReserved(rows *sql.Rows, err error) (*capacity.Resources, error) {
	if err != nil {
		return nil, fmt.Errorf("reserve host capacity: %w", err)
	}
	defer rows.Close()
	var got *capacity.Resources
	for rows.Next() {
		var a capacity.Resources
		if err := rows.Scan(&a.VCPUs, &a.MemoryMiB, &a.DiskGiB); err != nil {
			return nil, fmt.Errorf("reserve host capacity: %w", err)
		}
		got = &a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reserve host capacity: %w", err)
	}
	return got, nil
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
		// Announced, so every process's ledger sees the room come back.
		rev, err := bumpHostsVersion(tx, false)
		if err != nil {
			return err
		}
		// Never below zero, even if the ledger was edited by hand.
		err = tx.Exec(`UPDATE hosts SET
	alloc_vcpus = CASE WHEN alloc_vcpus > ? THEN alloc_vcpus - ? ELSE 0 END,
	alloc_memory_mib = CASE WHEN alloc_memory_mib > ? THEN alloc_memory_mib - ? ELSE 0 END,
	alloc_disk_gib = CASE WHEN alloc_disk_gib > ? THEN alloc_disk_gib - ? ELSE 0 END,
	placement_rev = ?, updated_at = ?
WHERE id = ?`, vm.VCPUs, vm.VCPUs, vm.MemoryMiB, vm.MemoryMiB, vm.DiskGiB, vm.DiskGiB, rev, now(), *vm.HostID).Error
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

// placeOnHost reserves a VM's resources on one given host, inside the
// caller's transaction, with the same guard as placeVM; a VM made from a
// snapshot must go where the snapshot's volume is. A refusal says what
// that host lacks.
func (s *Store) placeOnHost(tx *gorm.DB, hostID string, n capacity.Resources) (string, error) {
	allocated, err := reserve(tx, hostID, n)
	if err != nil {
		return "", err
	}
	if allocated != nil {
		s.ledger.observed(hostID, *allocated)
		return hostID, nil
	}
	hosts, err := loadHosts(tx, `id = ?`, hostID)
	if err != nil {
		return "", err
	}
	if len(hosts) != 1 {
		return "", E(ErrNoCapacity, "snapshot", "the snapshot's host is gone")
	}
	if !hosts[0].Usable() {
		return "", E(ErrNoCapacity, "snapshot", "the snapshot's host "+hosts[0].Name+" takes no new VMs now (it is disabled, in maintenance or not ready); a VM from this snapshot can only be made there")
	}
	h, free := hosts[0], hosts[0].Free()
	var lack string
	switch {
	case n.VCPUs > free.VCPUs:
		lack = fmt.Sprintf("%d vCPU free, the plan needs %d", max(free.VCPUs, 0), n.VCPUs)
	case n.MemoryMiB > free.MemoryMiB:
		lack = fmt.Sprintf("%s RAM free, the plan needs %s", capacity.FormatMiBDown(max(free.MemoryMiB, 0)), capacity.FormatMiB(n.MemoryMiB))
	default:
		lack = fmt.Sprintf("%d GiB disk free, the plan needs %d GiB", max(free.DiskGiB, 0), n.DiskGiB)
	}
	return "", E(ErrNoCapacity, "plan", fmt.Sprintf("the snapshot's host %s has %s; a VM from this snapshot can only be made there", h.Name, lack))
}
