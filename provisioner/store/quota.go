package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Quota is a set of per-tenant limits, or the usage measured against them.
type Quota struct {
	Instances    int64 `json:"instances"`
	VCPUs        int64 `json:"vcpus"`
	MemoryMiB    int64 `json:"memory_mib"`
	DiskGiB      int64 `json:"disk_gib"`
	SSHKeys      int64 `json:"ssh_keys"`
	PortForwards int64 `json:"port_forwards"`
	// Snapshots and SnapshotGiB bound a tenant's VM snapshots: how many,
	// and how much disk they take together.
	Snapshots   int64 `json:"snapshots"`
	SnapshotGiB int64 `json:"snapshot_gib"`
}

// QuotaMax bounds every quota figure staff may set.
const QuotaMax = 1 << 40

// Validate refuses negative or absurd limits.
func (q Quota) Validate() error {
	for _, f := range []struct {
		field string
		v     int64
	}{
		{"instances", q.Instances}, {"vcpus", q.VCPUs}, {"memory_mib", q.MemoryMiB},
		{"disk_gib", q.DiskGiB}, {"ssh_keys", q.SSHKeys}, {"port_forwards", q.PortForwards},
		{"snapshots", q.Snapshots}, {"snapshot_gib", q.SnapshotGiB},
	} {
		if f.v < 0 {
			return E(ErrInvalid, f.field, "must be zero or more")
		}
		if f.v > QuotaMax {
			return E(ErrInvalid, f.field, "is too large")
		}
	}
	return nil
}

// Left is what remains of limits after usage, never below zero.
func (q Quota) Left(used Quota) Quota {
	sub := func(a, b int64) int64 { return max(a-b, 0) }
	return Quota{
		sub(q.Instances, used.Instances), sub(q.VCPUs, used.VCPUs), sub(q.MemoryMiB, used.MemoryMiB),
		sub(q.DiskGiB, used.DiskGiB), sub(q.SSHKeys, used.SSHKeys), sub(q.PortForwards, used.PortForwards),
		sub(q.Snapshots, used.Snapshots), sub(q.SnapshotGiB, used.SnapshotGiB),
	}
}

// FitPlan tells whether one more VM of plan p fits in limits given usage;
// the error names the binding limit, e.g. "needs 4 GiB RAM; 2.5 GiB left in
// your quota".
func FitPlan(limits, used Quota, p Plan) error {
	left := limits.Left(used)
	switch {
	case left.Instances < 1:
		return E(ErrQuota, "plan", fmt.Sprintf("your quota allows %d instances and all are in use", limits.Instances))
	case p.VCPUs > left.VCPUs:
		return E(ErrQuota, "plan", fmt.Sprintf("needs %d vCPU; %d left in your quota", p.VCPUs, left.VCPUs))
	case p.MemoryMiB > left.MemoryMiB:
		return E(ErrQuota, "plan", fmt.Sprintf("needs %s RAM; %s left in your quota", FormatMiB(p.MemoryMiB), FormatMiB(left.MemoryMiB)))
	case p.DiskGiB > left.DiskGiB:
		return E(ErrQuota, "plan", fmt.Sprintf("needs %d GiB disk; %d GiB left in your quota", p.DiskGiB, left.DiskGiB))
	}
	return nil
}

// FormatMiB renders a memory size the way people read it: "512 MiB", "2 GiB", "2.5 GiB".
func FormatMiB(mib int64) string {
	if mib < 1024 {
		return strconv.FormatInt(mib, 10) + " MiB"
	}
	s := strconv.FormatFloat(float64(mib)/1024, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " GiB"
}

// usage measures what a tenant holds now, in one statement (each part
// on its own tenant index). VMs count until the provisioner has finished
// deleting them; a port forward counts while its VM does (correlated, so
// each forward looks up its one VM: SQLite builds an uncorrelated IN list
// from every VM of the region first); snapshots count while their volume
// is not gone yet.
func usage(tx *gorm.DB, tenantID string) (Quota, error) {
	var u Quota
	row := tx.Raw(`SELECT
	(SELECT COUNT(*) FROM vms WHERE tenant_id = ? AND deleted_at IS NULL),
	(SELECT COALESCE(SUM(vcpus),0) FROM vms WHERE tenant_id = ? AND deleted_at IS NULL),
	(SELECT COALESCE(SUM(memory_mib),0) FROM vms WHERE tenant_id = ? AND deleted_at IS NULL),
	(SELECT COALESCE(SUM(disk_gib),0) FROM vms WHERE tenant_id = ? AND deleted_at IS NULL),
	(SELECT COUNT(*) FROM ssh_keys WHERE tenant_id = ?),
	(SELECT COUNT(*) FROM port_forwards WHERE tenant_id = ? AND EXISTS (SELECT 1 FROM vms WHERE vms.id = port_forwards.vm_id AND vms.deleted_at IS NULL)),
	(SELECT COUNT(*) FROM snapshots WHERE tenant_id = ? AND deleted_at IS NULL),
	(SELECT COALESCE(SUM(quota_gib),0) FROM snapshots WHERE tenant_id = ? AND deleted_at IS NULL)`,
		tenantID, tenantID, tenantID, tenantID, tenantID, tenantID, tenantID, tenantID).Row()
	if err := row.Scan(&u.Instances, &u.VCPUs, &u.MemoryMiB, &u.DiskGiB, &u.SSHKeys, &u.PortForwards, &u.Snapshots, &u.SnapshotGiB); err != nil {
		return Quota{}, fmt.Errorf("measure usage: %w", err)
	}
	return u, nil
}

// TenantUsage returns what a tenant holds now, for a caller that has the
// tenant's limits already (the signed-in customer's own tenant).
func (s *Store) TenantUsage(ctx context.Context, tenantID string) (Quota, error) {
	return usage(s.db.WithContext(ctx), tenantID)
}

// QuotaUsage returns a tenant's limits and current usage.
func (s *Store) QuotaUsage(ctx context.Context, tenantID string) (limits, used Quota, err error) {
	db := s.db.WithContext(ctx)
	var t Tenant
	if err := db.Where("id = ?", tenantID).Take(&t).Error; err != nil {
		if errIsNotFound(err) {
			return Quota{}, Quota{}, notFound("tenant")
		}
		return Quota{}, Quota{}, fmt.Errorf("load tenant: %w", err)
	}
	used, err = usage(db, tenantID)
	return t.Quota(), used, err
}

// DefaultQuota is the quota new tenants start with.
func (s *Store) DefaultQuota(ctx context.Context) (Quota, error) {
	var d quotaDefaults
	if err := s.db.WithContext(ctx).Where("id = 1").Take(&d).Error; err != nil {
		return Quota{}, fmt.Errorf("load default quota: %w", err)
	}
	return d.quota(), nil
}

// SetDefaultQuota changes the quota future tenants start with.
func (s *Store) SetDefaultQuota(ctx context.Context, a Actor, q Quota) error {
	if err := q.Validate(); err != nil {
		return err
	}
	return s.change(ctx, a, "quota.defaults.update", &Target{Type: "quota_defaults", ID: "1"}, func(tx *gorm.DB) error {
		return tx.Model(&quotaDefaults{}).Where("id = 1").Updates(map[string]any{
			"instances": q.Instances, "vcpus": q.VCPUs, "memory_mib": q.MemoryMiB, "disk_gib": q.DiskGiB,
			"ssh_keys": q.SSHKeys, "port_forwards": q.PortForwards,
			"snapshots": q.Snapshots, "snapshot_gib": q.SnapshotGiB, "updated_at": now(),
		}).Error
	})
}

// SetTenantQuota changes one tenant's limits. Lowering a limit below current
// usage is allowed (nothing is taken away) but blocks new orders.
func (s *Store) SetTenantQuota(ctx context.Context, a Actor, tenantID string, q Quota) error {
	if err := q.Validate(); err != nil {
		return err
	}
	t := &Target{Type: "tenant", ID: tenantID, TenantID: tenantID}
	return s.change(ctx, a, "tenant.quota.update", t, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		t.Name = ten.Name
		ten.setQuota(q)
		return tx.Model(&Tenant{}).Where("id = ?", tenantID).Updates(map[string]any{
			"quota_instances": q.Instances, "quota_vcpus": q.VCPUs, "quota_memory_mib": q.MemoryMiB,
			"quota_disk_gib": q.DiskGiB, "quota_ssh_keys": q.SSHKeys, "quota_port_forwards": q.PortForwards,
			"quota_snapshots": q.Snapshots, "quota_snapshot_gib": q.SnapshotGiB,
		}).Error
	})
}
