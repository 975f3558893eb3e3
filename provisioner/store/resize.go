package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// Day-two changes of a VM that touch its record, not just its power: a
// resize to another plan and a rebuild from another image. Both are queued
// operations like start or stop; the record changes at once, in the
// transaction that queues the operation, and the provisioner then brings
// the domain in line with it.

// ResizeVM moves a VM to another plan: more or fewer vCPUs and memory, and
// a disk that may grow but never shrinks. In one transaction, with the
// tenant row locked as for an order, it re-checks the quota, reserves the
// difference on the VM's own host under its overcommit ratios, records the
// new sizes, closes the VM's usage record at the old plan's price and opens
// one at the new plan's, and queues the resize. The provisioner then stops
// the VM, grows its disk, redefines the domain and starts it again.
// A refusal names the binding limit and changes nothing.
func (s *Store) ResizeVM(ctx context.Context, a Actor, tenantID, vmID, plan string) (Operation, error) {
	plan = strings.TrimSpace(plan)
	return s.requestAction(ctx, a, tenantID, vmID, OpResize, func(tx *gorm.DB, ten Tenant, vm VM) (string, error) {
		if plan == "" {
			return "", E(ErrInvalid, "plan", "choose the plan to change to")
		}
		var p Plan
		if err := tx.Where("(id = ? OR name = ?) AND enabled = ?", plan, plan, true).Take(&p).Error; err != nil {
			if errIsNotFound(err) {
				return "", E(ErrInvalid, "plan", "this plan does not exist or is no longer offered")
			}
			return "", err
		}
		used, err := usage(tx, ten.ID)
		if err != nil {
			return "", err
		}
		if err := FitResize(ten.Quota(), used, vm, p); err != nil {
			return "", err
		}
		if err := resizeOnHost(tx, vm, p); err != nil {
			return "", err
		}
		var old Plan
		if err := tx.Where("id = ?", vm.PlanID).Take(&old).Error; err != nil {
			return "", fmt.Errorf("load current plan: %w", err)
		}
		ts := s.now()
		if err := tx.Model(&VM{}).Where("id = ?", vm.ID).Updates(map[string]any{
			"plan_id": p.ID, "vcpus": p.VCPUs, "memory_mib": p.MemoryMiB, "disk_gib": p.DiskGiB,
		}).Error; err != nil {
			return "", fmt.Errorf("record new plan: %w", err)
		}
		if err := repriceVM(tx, ts, vm, p.ID); err != nil {
			return "", err
		}
		if pricier, err := pricierPlan(tx, ts, old.ID, p.ID); err != nil {
			return "", err
		} else if pricier {
			// Counted now that the VM's open record carries the new price.
			if err := s.checkCredit(tx, ten.ID, ""); err != nil {
				return "", err
			}
		}
		msg := fmt.Sprintf("Plan change accepted: %s → %s (%d vCPU, %s RAM, %d GiB disk)",
			old.Name, p.Name, p.VCPUs, FormatMiB(p.MemoryMiB), p.DiskGiB)
		step := VMStep{ID: newID(), VMID: vm.ID, Step: "resize", State: StepDone, Message: msg, StartedAt: ts, FinishedAt: &ts}
		if err := tx.Create(&step).Error; err != nil {
			return "", fmt.Errorf("record resize step: %w", err)
		}
		return fmt.Sprintf("plan %s → %s", old.Name, p.Name), nil
	})
}

// RebuildVM reinstalls a VM from an image, erasing its disk; the name,
// address, plan and keys stay. image (id or name) chooses another enabled
// VM image; "" keeps the VM's own.
func (s *Store) RebuildVM(ctx context.Context, a Actor, tenantID, vmID, image string) (Operation, error) {
	image = strings.TrimSpace(image)
	return s.requestAction(ctx, a, tenantID, vmID, OpRebuild, func(tx *gorm.DB, _ Tenant, vm VM) (string, error) {
		// A fresh disk starts without the console password of a rescue.
		if err := tx.Model(&VM{}).Where("id = ?", vm.ID).Update("rescue_password_hash", "").Error; err != nil {
			return "", fmt.Errorf("clear rescue password: %w", err)
		}
		var cur Image
		if err := tx.Where("id = ?", vm.ImageID).Take(&cur).Error; err != nil {
			return "", fmt.Errorf("load current image: %w", err)
		}
		if image == "" || image == cur.ID || image == cur.Name {
			// The VM's own image is reinstalled even when no longer offered.
			return "image " + cur.Name, nil
		}
		var img Image
		if err := tx.Where("(id = ? OR name = ?) AND enabled = ? AND kind = ?", image, image, true, ImageVM).Take(&img).Error; err != nil {
			if errIsNotFound(err) {
				return "", E(ErrInvalid, "image", "this image does not exist or is no longer offered")
			}
			return "", err
		}
		if err := tx.Model(&VM{}).Where("id = ?", vm.ID).Update("image_id", img.ID).Error; err != nil {
			return "", fmt.Errorf("record new image: %w", err)
		}
		return fmt.Sprintf("image %s → %s", cur.Name, img.Name), nil
	})
}

// held is what a VM holds of each resource, as a quota figure.
func held(vm VM) Quota { return Quota{VCPUs: vm.VCPUs, MemoryMiB: vm.MemoryMiB, DiskGiB: vm.DiskGiB} }

// FitResize tells whether vm may change to plan p given the tenant's limits
// and usage (which counts vm at its current size): the plan must differ,
// must not shrink the disk, and what grows must fit in the quota with the
// VM's current share given back. Resources that do not grow are not
// checked, so a tenant over a lowered limit can still move within it.
func FitResize(limits, used Quota, vm VM, p Plan) error {
	switch {
	case p.ID == vm.PlanID:
		return E(ErrInvalid, "plan", "the VM already has the "+p.Name+" plan")
	case p.DiskGiB < vm.DiskGiB:
		return E(ErrInvalid, "plan", fmt.Sprintf("the %s plan has a %d GiB disk and this VM's disk is %d GiB; a disk can grow but never shrink",
			p.Name, p.DiskGiB, vm.DiskGiB))
	}
	h := held(vm)
	others := Quota{VCPUs: used.VCPUs - h.VCPUs, MemoryMiB: used.MemoryMiB - h.MemoryMiB, DiskGiB: used.DiskGiB - h.DiskGiB}
	left := limits.Left(others)
	switch {
	case p.VCPUs > h.VCPUs && p.VCPUs > left.VCPUs:
		return E(ErrQuota, "plan", fmt.Sprintf("the %s plan needs %d vCPU; your quota leaves %d for this VM", p.Name, p.VCPUs, left.VCPUs))
	case p.MemoryMiB > h.MemoryMiB && p.MemoryMiB > left.MemoryMiB:
		return E(ErrQuota, "plan", fmt.Sprintf("the %s plan needs %s RAM; your quota leaves %s for this VM", p.Name, FormatMiB(p.MemoryMiB), FormatMiB(left.MemoryMiB)))
	case p.DiskGiB > h.DiskGiB && p.DiskGiB > left.DiskGiB:
		return E(ErrQuota, "plan", fmt.Sprintf("the %s plan needs %d GiB disk; your quota leaves %d GiB for this VM", p.Name, p.DiskGiB, left.DiskGiB))
	}
	return nil
}

// resizeDelta is what a VM needs on its host beyond what it holds to run
// plan p; negative figures are given back.
func resizeDelta(vm VM, p Plan) capacity.Resources {
	return capacity.Resources{VCPUs: p.VCPUs - vm.VCPUs, MemoryMiB: p.MemoryMiB - vm.MemoryMiB, DiskGiB: p.DiskGiB - vm.DiskGiB}
}

// resizeOnHost changes the VM's reservation on its host by the plan's
// difference, in tx, with one guarded UPDATE: a resource that grows must
// fit under the host's ratios, and growing at all needs the host usable
// (not in maintenance, disabled or unreachable); one that shrinks is given
// back. The VM stays on its host: a refusal says what the host lacks. The
// change is announced (host_ledger), so every process's placement ledger
// re-reads the host.
func resizeOnHost(tx *gorm.DB, vm VM, p Plan) error {
	d := resizeDelta(vm, p)
	if d == (capacity.Resources{}) {
		return nil
	}
	if vm.HostID == nil {
		return E(ErrInvalidTransition, "plan", "the VM has no host yet; change its plan once it is running")
	}
	rev, err := bumpHostsVersion(tx, false)
	if err != nil {
		return err
	}
	eps := capacity.Epsilon
	q := `UPDATE hosts SET
	alloc_vcpus = CASE WHEN alloc_vcpus + ? > 0 THEN alloc_vcpus + ? ELSE 0 END,
	alloc_memory_mib = CASE WHEN alloc_memory_mib + ? > 0 THEN alloc_memory_mib + ? ELSE 0 END,
	alloc_disk_gib = CASE WHEN alloc_disk_gib + ? > 0 THEN alloc_disk_gib + ? ELSE 0 END,
	placement_rev = ?, updated_at = ?
WHERE id = ?`
	args := []any{d.VCPUs, d.VCPUs, d.MemoryMiB, d.MemoryMiB, d.DiskGiB, d.DiskGiB, rev, now(), *vm.HostID}
	if d.VCPUs > 0 || d.MemoryMiB > 0 || d.DiskGiB > 0 {
		q += ` AND enabled = ? AND maintenance = ? AND state = ?`
		args = append(args, true, false, HostReady)
	}
	if d.VCPUs > 0 {
		q += ` AND alloc_vcpus + ? + reserved_cores <= cores * cpu_ratio + ?`
		args = append(args, d.VCPUs, eps)
	}
	if d.MemoryMiB > 0 {
		q += ` AND alloc_memory_mib + ? + reserved_memory_mib <= memory_mib * memory_ratio + ?`
		args = append(args, d.MemoryMiB, eps)
	}
	if d.DiskGiB > 0 {
		q += ` AND alloc_disk_gib + ? + reserved_disk_gib <= disk_gib * disk_ratio + ?`
		args = append(args, d.DiskGiB, eps)
	}
	got, err := scanReserved(tx.Raw(q+` RETURNING alloc_vcpus, alloc_memory_mib, alloc_disk_gib`, args...).Rows())
	if err != nil || got != nil {
		return err
	}
	hosts, err := loadHosts(tx, `id = ?`, *vm.HostID)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return E(ErrNoCapacity, "plan", "this VM's host is no longer registered; ask us to look into it")
	}
	if err := FitOnHost(hosts[0], d, p.Name); err != nil {
		return err
	}
	// The guard and the figures read just after it disagree only while the
	// host changes under us.
	return E(ErrConflict, "plan", "this VM's host is changing right now; try again")
}

// FitOnHost tells whether a VM can grow by d on host h, the VM's own
// host; the error names the binding limit with the host's overcommit ratio
// ("the medium plan needs 2 vCPU more; this VM's host has 1 free at 4.0×
// CPU overcommit") and never the host itself. The order of the checks
// (usable, vCPU, memory, disk) is the order's refusal's.
func FitOnHost(h capacity.Host, d capacity.Resources, planName string) error {
	if d.VCPUs <= 0 && d.MemoryMiB <= 0 && d.DiskGiB <= 0 {
		return nil
	}
	refuse := func(msg string, args ...any) error { return E(ErrNoCapacity, "plan", fmt.Sprintf(msg, args...)) }
	if !h.Usable() {
		why := "is not available right now"
		switch {
		case h.Maintenance:
			why = "is in maintenance"
		case !h.Enabled:
			why = "takes no new load"
		}
		return refuse("this VM's host %s, so the VM cannot grow now; try again later", why)
	}
	f := h.Free()
	switch {
	case d.VCPUs > 0 && d.VCPUs > f.VCPUs:
		return refuse("the %s plan needs %d vCPU more; this VM's host has %d free at %s CPU overcommit",
			planName, d.VCPUs, max(f.VCPUs, 0), capacity.FormatRatio(h.CPURatio))
	case d.MemoryMiB > 0 && d.MemoryMiB > f.MemoryMiB:
		return refuse("the %s plan needs %s RAM more; this VM's host has %s free at %s memory overcommit",
			planName, capacity.FormatMiB(d.MemoryMiB), capacity.FormatMiBDown(max(f.MemoryMiB, 0)), capacity.FormatRatio(h.MemoryRatio))
	case d.DiskGiB > 0 && d.DiskGiB > f.DiskGiB:
		return refuse("the %s plan needs %d GiB disk more; this VM's host has %d GiB free at %s disk overcommit",
			planName, d.DiskGiB, max(f.DiskGiB, 0), capacity.FormatRatio(h.DiskRatio))
	}
	return nil
}

// repriceVM moves a VM's open usage record to another plan's price at ts,
// in tx: the record is closed and one of the same class opened with the
// new item, so every hour from ts on bills the new plan. A VM that has not
// run yet has no record; its first one takes the plan it then has.
func repriceVM(tx *gorm.DB, ts time.Time, vm VM, planID string) error {
	var open UsageRecord
	err := tx.Where("resource_kind = ? AND resource_id = ? AND ended_at IS NULL", ResourceVM, vm.ID).Take(&open).Error
	switch {
	case errIsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("load usage: %w", err)
	case open.Item == PlanItem(planID):
		return nil
	}
	if err := tx.Model(&UsageRecord{}).Where("id = ?", open.ID).Update("ended_at", ts).Error; err != nil {
		return fmt.Errorf("close usage: %w", err)
	}
	next := UsageRecord{ID: newID(), TenantID: vm.TenantID, ResourceKind: ResourceVM, ResourceID: vm.ID,
		ResourceName: vm.Name, Item: PlanItem(planID), Class: open.Class, StartedAt: ts}
	if err := tx.Create(&next).Error; err != nil {
		return fmt.Errorf("open usage: %w", err)
	}
	return nil
}

// pricierPlan reports whether plan to may cost more in the month of ts
// than plan from, at the prices in effect then; an unpriced plan costs
// nothing.
func pricierPlan(tx *gorm.DB, ts time.Time, from, to string) (bool, error) {
	var prices []Price
	if err := tx.Where("item IN ? AND effective_from <= ?", []string{PlanItem(from), PlanItem(to)}, ts).
		Order("item, effective_from").Find(&prices).Error; err != nil {
		return false, fmt.Errorf("load prices: %w", err)
	}
	book := newPriceBook(prices)
	start, end, _ := MonthBounds(MonthOf(ts))
	cost := func(planID string) int64 {
		if p, ok := book.at(PlanItem(planID), ts); ok {
			return monthCost(p, start, end)
		}
		return 0
	}
	return cost(to) > cost(from), nil
}

// ResizeChoice is a plan a VM could change to, and why it cannot when Err
// is set (the same refusal ResizeVM would give, as far as can be told
// before asking).
type ResizeChoice struct {
	Plan Plan
	Err  error
}

// ResizeChoices lists the enabled plans other than the VM's own, each
// with the refusal that quota, disk size or the VM's host would give now.
// The answer may change before the resize is asked for; ResizeVM re-checks.
func (s *Store) ResizeChoices(ctx context.Context, tenantID, vmID string) ([]ResizeChoice, error) {
	db := s.db.WithContext(ctx)
	var vm VM
	if err := db.Where("id = ? AND tenant_id = ? AND deleted_at IS NULL", vmID, tenantID).Take(&vm).Error; err != nil {
		if errIsNotFound(err) {
			return nil, notFound("vm")
		}
		return nil, fmt.Errorf("load vm: %w", err)
	}
	limits, used, err := s.QuotaUsage(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var host *capacity.Host
	if vm.HostID != nil {
		hosts, err := loadHosts(db, `id = ?`, *vm.HostID)
		if err != nil {
			return nil, err
		}
		if len(hosts) == 1 {
			host = &hosts[0]
		}
	}
	plans, err := s.ListPlans(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]ResizeChoice, 0, len(plans))
	for _, p := range plans {
		if p.ID == vm.PlanID {
			continue
		}
		err := FitResize(limits, used, vm, p)
		if err == nil && host != nil {
			err = FitOnHost(*host, resizeDelta(vm, p), p.Name)
		}
		out = append(out, ResizeChoice{Plan: p, Err: err})
	}
	return out, nil
}
