package store

import (
	"fmt"
	"reflect"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// ledgerMaxAge is how long a ledger is trusted without re-reading every
// host. Changes made through the store are seen at the next order anyway;
// this bounds the drift from what nothing announces: hosts edited by hand
// in SQL, and reservations of orders that rolled back afterwards.
const ledgerMaxAge = 10 * time.Second

// hostLedger is a Store's in-memory copy of the usable hosts' capacity,
// from which placement chooses a host without reading the hosts table.
// It only proposes: the guarded UPDATE in reserve decides, so a stale
// ledger (other processes reserve without announcing it) costs a retry,
// never an over-commit. The host_ledger row says when hosts changed in
// any other way; see migrations/0016_host_ledger.sql.
type hostLedger struct {
	mu       sync.Mutex
	fleet    *capacity.Ledger // nil until first loaded
	version  int64            // host_ledger.version the fleet reflects
	epoch    int64
	loadedAt time.Time
	// pending is what this process has proposed on a host and not yet
	// heard back about from reserve; it is counted in fleet so that
	// concurrent orders spread out instead of queueing on one host row.
	pending map[string]capacity.Resources
}

// newHostLedger returns an empty ledger, loaded by its first sync.
func newHostLedger() *hostLedger {
	return &hostLedger{pending: map[string]capacity.Resources{}}
}

// hostColumns are what placement reads of a host, in loadHosts' order.
const hostColumns = `id, name, enabled, maintenance, state, cores, memory_mib, disk_gib, cpu_ratio, memory_ratio, disk_ratio,
	reserved_cores, reserved_memory_mib, reserved_disk_gib, alloc_vcpus, alloc_memory_mib, alloc_disk_gib`

// loadHosts reads hosts in capacity terms. It scans by hand: at 10,000
// hosts this is most of the cost of re-reading the fleet.
func loadHosts(tx *gorm.DB, where string, args ...any) ([]capacity.Host, error) {
	rows, err := tx.Raw(`SELECT `+hostColumns+` FROM hosts WHERE `+where, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	defer rows.Close()
	var out []capacity.Host
	for rows.Next() {
		var h capacity.Host
		var state string
		if err := rows.Scan(&h.ID, &h.Name, &h.Enabled, &h.Maintenance, &state, &h.Cores, &h.MemoryMiB, &h.DiskGiB,
			&h.CPURatio, &h.MemoryRatio, &h.DiskRatio,
			&h.Reserved.VCPUs, &h.Reserved.MemoryMiB, &h.Reserved.DiskGiB,
			&h.Allocated.VCPUs, &h.Allocated.MemoryMiB, &h.Allocated.DiskGiB); err != nil {
			return nil, fmt.Errorf("load hosts: %w", err)
		}
		h.Ready = state == HostReady
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	return out, nil
}

// usableHosts reads the hosts that may take VMs.
func usableHosts(tx *gorm.DB) ([]capacity.Host, error) {
	return loadHosts(tx, `enabled = ? AND maintenance = ? AND state = ?`, true, false, HostReady)
}

func readHostsVersion(tx *gorm.DB) (version, epoch int64, err error) {
	if err := tx.Raw(`SELECT version, epoch FROM host_ledger WHERE id = 1`).Row().Scan(&version, &epoch); err != nil {
		return 0, 0, fmt.Errorf("read hosts version: %w", err)
	}
	return version, epoch, nil
}

// bumpHostsVersion announces, in tx, that hosts change; the caller stamps
// the returned version on the rows it changes (placement_rev). added says
// hosts are added or removed, which makes every ledger re-read them all.
// On PostgreSQL the row lock it takes is held to commit, so versions are
// handed out in commit order and a ledger that has read version v has
// seen every row stamped v or lower.
func bumpHostsVersion(tx *gorm.DB, added bool) (int64, error) {
	q := `UPDATE host_ledger SET version = version + 1 WHERE id = 1 RETURNING version`
	if added {
		q = `UPDATE host_ledger SET version = version + 1, epoch = epoch + 1 WHERE id = 1 RETURNING version`
	}
	var v int64
	if err := tx.Raw(q).Row().Scan(&v); err != nil {
		return 0, fmt.Errorf("announce host change: %w", err)
	}
	return v, nil
}

// BeforeCreate, BeforeUpdate and BeforeDelete announce every change made
// to hosts through GORM, in its transaction and before the host row is
// written (the same lock order as ReleaseHostCapacity, so the two never
// deadlock). Raw SQL and UpdateColumn(s) bypass them: placement's own
// statements announce themselves, and ledgerMaxAge covers the rest.

// BeforeCreate announces new hosts, once per statement.
func (*Host) BeforeCreate(tx *gorm.DB) error {
	if tx.Statement.ReflectValue.Kind() == reflect.Slice && tx.Statement.CurDestIndex > 0 {
		return nil
	}
	_, err := bumpHostsVersion(tx, true)
	return err
}

// BeforeUpdate announces a host edit and stamps the rows it changes.
// Updates it cannot stamp (from a struct, or limited by Select or Omit)
// make every ledger re-read all hosts instead.
func (*Host) BeforeUpdate(tx *gorm.DB) error {
	dest, ok := tx.Statement.Dest.(map[string]any)
	ok = ok && len(tx.Statement.Selects) == 0 && len(tx.Statement.Omits) == 0
	v, err := bumpHostsVersion(tx, !ok)
	if err != nil {
		return err
	}
	if ok {
		dest["placement_rev"] = v
	}
	return nil
}

// BeforeDelete announces hosts removed.
func (*Host) BeforeDelete(tx *gorm.DB) error {
	_, err := bumpHostsVersion(tx, true)
	return err
}

// sync brings the ledger up to the database's view of the hosts, in tx:
// everything when hosts were added or removed or the copy is old, else
// just the rows stamped since.
func (l *hostLedger) sync(tx *gorm.DB) error {
	version, epoch, err := readHostsVersion(tx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.fleet == nil || epoch > l.epoch || time.Since(l.loadedAt) > ledgerMaxAge:
		hosts, err := usableHosts(tx)
		if err != nil {
			return err
		}
		l.install(hosts, version, epoch)
	case version > l.version && epoch == l.epoch:
		hosts, err := loadHosts(tx, `placement_rev > ?`, l.version)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			l.put(h)
		}
		l.version = version
	}
	return nil
}

// install replaces the fleet with hosts read after version and epoch were.
// The caller holds l.mu.
func (l *hostLedger) install(hosts []capacity.Host, version, epoch int64) {
	l.fleet = capacity.NewLedger(hosts)
	for id, p := range l.pending {
		l.fleet.Allocate(id, p)
	}
	l.version, l.epoch, l.loadedAt = version, epoch, time.Now()
}

// put records a host as read from the database. The caller holds l.mu.
func (l *hostLedger) put(h capacity.Host) {
	if !h.Usable() {
		l.fleet.Remove(h.ID)
		return
	}
	h.Allocated = h.Allocated.Plus(l.pending[h.ID])
	l.fleet.Set(h)
}

// proposal is a host chosen from the ledger as of a hosts version.
type proposal struct {
	hostID         string
	version, epoch int64
}

// fresh reports whether the ledger is loaded and young enough to be used
// without reading the hosts version first.
func (l *hostLedger) fresh() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fleet != nil && time.Since(l.loadedAt) <= ledgerMaxAge
}

// propose chooses a host for n and counts n on it as pending.
func (l *hostLedger) propose(n capacity.Resources, s capacity.Strategy) (proposal, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.fleet.Best(n, s)
	if !ok {
		return proposal{}, false
	}
	l.fleet.Allocate(h.ID, n)
	l.pending[h.ID] = l.pending[h.ID].Plus(n)
	return proposal{hostID: h.ID, version: l.version, epoch: l.epoch}, true
}

// settle records what reserve answered for a proposal of n on hostID:
// allocated is the host's ledger after the reservation, or nil when it
// was refused (or failed).
func (l *hostLedger) settle(hostID string, n capacity.Resources, allocated *capacity.Resources) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending[hostID].Minus(n)
	if p == (capacity.Resources{}) {
		delete(l.pending, hostID)
	} else {
		l.pending[hostID] = p
	}
	if allocated == nil {
		l.fleet.Allocate(hostID, capacity.Resources{}.Minus(n))
		return
	}
	l.setAllocated(hostID, *allocated)
}

// setAllocated records a host's ledger as the database reported it. The
// caller holds l.mu.
func (l *hostLedger) setAllocated(hostID string, allocated capacity.Resources) {
	if h, ok := l.fleet.Host(hostID); ok {
		h.Allocated = allocated.Plus(l.pending[hostID])
		l.fleet.Set(h)
	}
}

// observed records the database's answer outside a proposal.
func (l *hostLedger) observed(hostID string, allocated capacity.Resources) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fleet != nil {
		l.setAllocated(hostID, allocated)
	}
}

// refresh re-reads one host after a reservation on it was refused.
func (l *hostLedger) refresh(tx *gorm.DB, hostID string) error {
	hosts, err := loadHosts(tx, `id = ?`, hostID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(hosts) == 0 {
		l.fleet.Remove(hostID)
		return nil
	}
	l.put(hosts[0])
	return nil
}

// reload replaces the fleet with hosts the caller read after reading
// version and epoch.
func (l *hostLedger) reload(hosts []capacity.Host, version, epoch int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.install(hosts, version, epoch)
}
