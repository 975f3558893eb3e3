package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
)

// VM snapshots. A snapshot is a full copy of a VM's disk volume, kept in
// the storage pool of the VM's host. Taking, restoring and deleting one
// are queued operations on the VM like start or rebuild (one at a time per
// VM), each naming its snapshot; the provisioner carries them out and
// records the result here. A snapshot counts against the tenant's
// snapshot quota (count and GiB) from the moment it is asked for until its
// volume is gone; while it is being taken it counts as large as the VM's
// disk, once ready at its real size rounded up to a GiB.

// Snapshot states.
const (
	SnapshotCreating  = "creating"
	SnapshotReady     = "ready"
	SnapshotRestoring = "restoring"
	SnapshotDeleting  = "deleting"
	SnapshotError     = "error"
)

// Snapshot consistencies: how the guest was when its disk was copied.
const (
	// ConsistencyCrash is a copy of a running guest's disk at one moment:
	// what a power cut would leave, which journaling file systems recover
	// from.
	ConsistencyCrash = "crash-consistent"
	// ConsistencyFrozen is a copy of a running guest's disk taken while
	// its guest agent had frozen the file systems: they are clean.
	ConsistencyFrozen = "frozen"
	// ConsistencyStopped is a copy of a guest that was shut down.
	ConsistencyStopped = "stopped"
)

// Snapshot is one snapshot of a VM's disk.
type Snapshot struct {
	ID          string
	TenantID    string
	VMID        string `gorm:"column:vm_id"`
	Name        string
	HostID      string
	Volume      string
	SizeBytes   int64
	QuotaGiB    int64 `gorm:"column:quota_gib"`
	Consistency string
	State       string
	Message     string
	CreatedAt   time.Time
	ReadyAt     *time.Time
	DeletedAt   *time.Time
}

// TableName keeps the table name plain.
func (Snapshot) TableName() string { return "snapshots" }

// SnapshotVolume names a snapshot's volume in its host's pool: unique,
// stable, and free of anything a customer typed.
func SnapshotVolume(id string) string { return "fibrix-snap-" + id + ".qcow2" }

// snapshotRules says in which VM states each snapshot operation may be
// queued. A snapshot changes nothing the customer wants of the VM.
var snapshotRules = map[string]actionRule{
	OpSnapshot:       {from: []string{VMRunning, VMStopped}},
	OpRestore:        {from: []string{VMRunning, VMStopped, VMError}},
	OpSnapshotDelete: {from: []string{VMRunning, VMStopped, VMError}},
}

var snapshotNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidateSnapshotName refuses a name that is not 1-63 letters, digits,
// dots, dashes or underscores starting with a letter or digit.
func ValidateSnapshotName(name string) error {
	if name == "" {
		return E(ErrInvalid, "name", "give the snapshot a name")
	}
	if !snapshotNameRE.MatchString(name) {
		return E(ErrInvalid, "name", "a snapshot name has 1 to 63 letters, digits, dots, dashes or underscores and starts with a letter or digit")
	}
	return nil
}

// FitSnapshot tells whether one more snapshot of a VM with a diskGiB disk
// fits in limits given usage; the error names the binding limit.
func FitSnapshot(limits, used Quota, diskGiB int64) error {
	left := limits.Left(used)
	switch {
	case left.Snapshots < 1:
		return E(ErrQuota, "name", fmt.Sprintf("your quota allows %d snapshots and all are in use; delete one first", limits.Snapshots))
	case diskGiB > left.SnapshotGiB:
		return E(ErrQuota, "name", fmt.Sprintf("a snapshot of this VM needs up to %d GiB; %d GiB left in your snapshot quota", diskGiB, left.SnapshotGiB))
	}
	return nil
}

// CreateSnapshot asks for a snapshot of a VM's disk. In one transaction,
// with the tenant row locked as for an order, it checks the name and the
// snapshot quota, records the snapshot (creating) and queues the snapshot
// operation. A refusal names the binding limit and changes nothing.
func (s *Store) CreateSnapshot(ctx context.Context, a Actor, tenantID, vmID, name string) (Snapshot, Operation, error) {
	name = strings.TrimSpace(name)
	var snap Snapshot
	op, err := s.requestActionOn(ctx, a, "", tenantID, vmID, OpSnapshot, func(tx *gorm.DB, ten Tenant, vm VM) (string, error) {
		if err := ValidateSnapshotName(name); err != nil {
			return "", err
		}
		if vm.HostID == nil {
			return "", E(ErrInvalidTransition, "type", "the VM has no host yet; take a snapshot once it is running")
		}
		var n int64
		if err := tx.Model(&Snapshot{}).Where("vm_id = ? AND name = ? AND deleted_at IS NULL", vm.ID, name).Count(&n).Error; err != nil {
			return "", fmt.Errorf("check snapshot name: %w", err)
		}
		if n > 0 {
			return "", E(ErrConflict, "name", "this VM already has a snapshot named "+name)
		}
		used, err := usage(tx, ten.ID)
		if err != nil {
			return "", err
		}
		if err := FitSnapshot(ten.Quota(), used, vm.DiskGiB); err != nil {
			return "", err
		}
		id := newID()
		snap = Snapshot{ID: id, TenantID: ten.ID, VMID: vm.ID, Name: name, HostID: *vm.HostID, Volume: SnapshotVolume(id),
			QuotaGiB: vm.DiskGiB, State: SnapshotCreating, CreatedAt: s.now()}
		if err := tx.Create(&snap).Error; err != nil {
			if isDuplicate(err) {
				return "", E(ErrConflict, "name", "this VM already has a snapshot named "+name)
			}
			return "", fmt.Errorf("record snapshot: %w", err)
		}
		return "snapshot " + name, nil
	}, &snap.ID)
	if err != nil {
		return Snapshot{}, Operation{}, err
	}
	return snap, op, nil
}

// RestoreSnapshot asks for a VM's disk to be replaced by a ready snapshot
// of it. The VM keeps its name, address, plan and host keys (they are on
// the disk as it was); whatever was written since the snapshot is lost.
func (s *Store) RestoreSnapshot(ctx context.Context, a Actor, tenantID, vmID, snapID string) (Operation, error) {
	return s.snapshotAction(ctx, a, tenantID, vmID, snapID, OpRestore, SnapshotRestoring,
		[]string{SnapshotReady}, "only a ready snapshot can be restored")
}

// DeleteSnapshot asks for a snapshot's volume to be deleted; its quota is
// given back once the volume is gone.
func (s *Store) DeleteSnapshot(ctx context.Context, a Actor, tenantID, vmID, snapID string) (Operation, error) {
	return s.snapshotAction(ctx, a, tenantID, vmID, snapID, OpSnapshotDelete, SnapshotDeleting,
		[]string{SnapshotReady, SnapshotError}, "the snapshot is busy; wait until it is ready")
}

func (s *Store) snapshotAction(ctx context.Context, a Actor, tenantID, vmID, snapID, action, state string, from []string, busy string) (Operation, error) {
	snapID = strings.TrimSpace(snapID)
	return s.requestActionOn(ctx, a, "", tenantID, vmID, action, func(tx *gorm.DB, _ Tenant, vm VM) (string, error) {
		var snap Snapshot
		if err := tx.Where("id = ? AND vm_id = ? AND deleted_at IS NULL", snapID, vm.ID).Take(&snap).Error; err != nil {
			if errIsNotFound(err) {
				return "", notFound("snapshot")
			}
			return "", fmt.Errorf("load snapshot: %w", err)
		}
		if action == OpSnapshotDelete {
			if err := snapshotCopying(tx, "snapshots.id", snap.ID); err != nil {
				return "", err
			}
		}
		res := tx.Model(&Snapshot{}).Where("id = ? AND state IN ?", snap.ID, from).Updates(map[string]any{"state": state, "message": ""})
		if res.Error != nil {
			return "", fmt.Errorf("record snapshot state: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return "", E(ErrInvalidTransition, "snapshot", busy+" (it is "+snap.State+")")
		}
		return "snapshot " + snap.Name, nil
	}, &snapID)
}

// ListSnapshots returns a VM's snapshots, newest first; tenantID "" is the
// provisioner's view of any VM. Another tenant's VM is not found.
func (s *Store) ListSnapshots(ctx context.Context, tenantID, vmID string) ([]Snapshot, error) {
	db := s.db.WithContext(ctx)
	if err := s.ownVM(db, tenantID, vmID); err != nil {
		return nil, err
	}
	var out []Snapshot
	if err := db.Where("vm_id = ? AND deleted_at IS NULL", vmID).Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return out, nil
}

// GetSnapshot returns one snapshot of a VM.
func (s *Store) GetSnapshot(ctx context.Context, tenantID, vmID, snapID string) (Snapshot, error) {
	db := s.db.WithContext(ctx)
	if err := s.ownVM(db, tenantID, vmID); err != nil {
		return Snapshot{}, err
	}
	var snap Snapshot
	if err := db.Where("id = ? AND vm_id = ? AND deleted_at IS NULL", snapID, vmID).Take(&snap).Error; err != nil {
		if errIsNotFound(err) {
			return Snapshot{}, notFound("snapshot")
		}
		return Snapshot{}, fmt.Errorf("load snapshot: %w", err)
	}
	return snap, nil
}

// ownVM checks that vmID is a VM of tenantID ("" for any tenant) that has
// not been deleted.
func (s *Store) ownVM(db *gorm.DB, tenantID, vmID string) error {
	q := db.Model(&VM{}).Where("id = ? AND deleted_at IS NULL", vmID)
	if tenantID != "" {
		q = q.Where("tenant_id = ?", tenantID)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return fmt.Errorf("load vm: %w", err)
	}
	if n == 0 {
		return notFound("vm")
	}
	return nil
}

// SnapshotTaken records a snapshot's volume made: its real size, which
// from now on is what it counts against the quota and what it bills (per
// GiB-hour, from now until its volume is gone), and its consistency. The
// state and the usage record change in one transaction.
func (s *Store) SnapshotTaken(ctx context.Context, snapID string, sizeBytes int64, consistency string) error {
	ts := s.now()
	gib := max((sizeBytes+(1<<30)-1)>>30, 1)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		snap, err := setSnapshot(tx, snapID, map[string]any{"state": SnapshotReady, "size_bytes": sizeBytes, "quota_gib": gib,
			"consistency": consistency, "ready_at": ts, "message": ""})
		if err != nil {
			return err
		}
		var vm VM
		if err := tx.Select("name").Where("id = ?", snap.VMID).Take(&vm).Error; err != nil {
			return fmt.Errorf("load vm for snapshot usage: %w", err)
		}
		return meter(tx, ts, UsageRecord{TenantID: snap.TenantID, ResourceKind: ResourceSnapshot, ResourceID: snap.ID,
			ResourceName: vm.Name + "/" + snap.Name, Item: ItemSnapshotGiB, Units: gib}, UsageActive)
	})
}

// SnapshotSettled puts a snapshot back to ready after a restore, or after
// a restore or delete that failed; message says what went wrong, if anything.
func (s *Store) SnapshotSettled(ctx context.Context, snapID, message string) error {
	_, err := setSnapshot(s.db.WithContext(ctx), snapID, map[string]any{"state": SnapshotReady, "message": clean(message)})
	return err
}

// SnapshotFailed records that a snapshot could not be taken; it keeps its
// quota until the customer deletes it, which also removes any partial volume.
func (s *Store) SnapshotFailed(ctx context.Context, snapID, message string) error {
	_, err := setSnapshot(s.db.WithContext(ctx), snapID, map[string]any{"state": SnapshotError, "message": clean(message)})
	return err
}

// SnapshotGone records a snapshot's volume deleted, which gives its quota
// back and, in the same transaction, ends its billing.
func (s *Store) SnapshotGone(ctx context.Context, snapID string) error {
	ts := s.now()
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := setSnapshot(tx, snapID, map[string]any{"deleted_at": ts}); err != nil {
			return err
		}
		return meter(tx, ts, UsageRecord{ResourceKind: ResourceSnapshot, ResourceID: snapID}, "")
	})
}

// setSnapshot changes a snapshot whose volume is not gone and returns it
// as changed.
func setSnapshot(db *gorm.DB, snapID string, upd map[string]any) (Snapshot, error) {
	res := db.Model(&Snapshot{}).Where("id = ? AND deleted_at IS NULL", snapID).Updates(upd)
	if res.Error != nil {
		return Snapshot{}, fmt.Errorf("record snapshot: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return Snapshot{}, notFound("snapshot")
	}
	var snap Snapshot
	if err := db.Where("id = ?", snapID).Take(&snap).Error; err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot: %w", err)
	}
	return snap, nil
}

// orderSnapshot loads the ready snapshot a VM is ordered from, which must
// be the tenant's and of a disk no larger than the plan's, and the image
// its VM was made from, which the new VM records (a rebuild installs it).
// Another tenant's snapshot is no such snapshot.
func orderSnapshot(tx *gorm.DB, tenantID, snapID string, plan Plan) (*Snapshot, Image, error) {
	var snap Snapshot
	if err := tx.Where("id = ? AND tenant_id = ? AND deleted_at IS NULL", snapID, tenantID).Take(&snap).Error; err != nil {
		if errIsNotFound(err) {
			return nil, Image{}, E(ErrInvalid, "snapshot", "no such snapshot")
		}
		return nil, Image{}, fmt.Errorf("load snapshot: %w", err)
	}
	if snap.State != SnapshotReady {
		return nil, Image{}, E(ErrInvalid, "snapshot", "the snapshot is "+snap.State+"; only a ready snapshot can make a VM")
	}
	var src VM
	if err := tx.Where("id = ?", snap.VMID).Take(&src).Error; err != nil {
		return nil, Image{}, fmt.Errorf("load snapshot's vm: %w", err)
	}
	// The VM's disk now is at least as large as when the snapshot was
	// taken: disks only grow.
	if plan.DiskGiB < src.DiskGiB {
		return nil, Image{}, E(ErrInvalid, "plan", fmt.Sprintf("the snapshot is of a %d GiB disk; choose a plan with at least that much (this one has %d GiB)", src.DiskGiB, plan.DiskGiB))
	}
	var img Image
	if err := tx.Where("id = ?", src.ImageID).Take(&img).Error; err != nil {
		return nil, Image{}, fmt.Errorf("load snapshot's image: %w", err)
	}
	return &snap, img, nil
}

// snapshotCopying refuses to delete snapshots while a VM is being made
// from one of them: its disk may not be copied yet. column is
// "snapshots.id" or "snapshots.vm_id", matched against id.
func snapshotCopying(tx *gorm.DB, column, id string) error {
	var names []string
	err := tx.Table("vms").Joins("JOIN snapshots ON snapshots.id = vms.source_snapshot_id").
		Where(column+" = ? AND vms.deleted_at IS NULL AND vms.state IN ?", id, []string{VMPending, VMProvisioning}).
		Order("vms.name").Limit(1).Pluck("vms.name", &names).Error
	if err != nil {
		return fmt.Errorf("check vms made from snapshots: %w", err)
	}
	if len(names) > 0 {
		return E(ErrConflict, "snapshot", "VM "+names[0]+" is being made from this snapshot; wait until it is running")
	}
	return nil
}

// SnapshotSource is a ready snapshot a new VM may be ordered from.
type SnapshotSource struct {
	Snapshot
	VMName    string `gorm:"column:vm_name"`
	VMDiskGiB int64  `gorm:"column:vm_disk_gib"` // the smallest plan disk a VM from it needs
}

// ReadySnapshots returns the tenant's ready snapshots, of all its VMs,
// newest first: what the order form offers to make a VM from.
func (s *Store) ReadySnapshots(ctx context.Context, tenantID string) ([]SnapshotSource, error) {
	var out []SnapshotSource
	err := s.db.WithContext(ctx).Table("snapshots").Joins("JOIN vms ON vms.id = snapshots.vm_id").
		Where("snapshots.tenant_id = ? AND snapshots.state = ? AND snapshots.deleted_at IS NULL AND vms.deleted_at IS NULL", tenantID, SnapshotReady).
		Select("snapshots.*, vms.name AS vm_name, vms.disk_gib AS vm_disk_gib").
		Order("snapshots.created_at DESC, snapshots.id DESC").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list ready snapshots: %w", err)
	}
	return out, nil
}
