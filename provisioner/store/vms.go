package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// MaxUserData bounds the cloud-init user-data a customer may attach.
const MaxUserData = 16 << 10

// VMOrder is a customer's request for a new VM.
type VMOrder struct {
	Name     string
	Plan     string // id or name
	Image    string // id or name; empty when Snapshot is set
	Snapshot string // instead of Image: id of one of the tenant's ready snapshots
	SSHKeys  []string
	UserData string
}

var hostnameLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidHostname checks an RFC 1123 label and explains what is wrong.
func ValidHostname(name string) error {
	switch {
	case name == "":
		return E(ErrInvalid, "name", "give the VM a name; it becomes its hostname")
	case len(name) > 63:
		return E(ErrInvalid, "name", "the name must be at most 63 characters")
	case strings.ToLower(name) != name:
		return E(ErrInvalid, "name", "use lower-case letters only")
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return E(ErrInvalid, "name", "the name cannot start or end with a dash")
	case !hostnameLabel.MatchString(name):
		return E(ErrInvalid, "name", "use only letters a–z, digits and dashes (a hostname label)")
	}
	return nil
}

func (o *VMOrder) validate() error {
	o.Name = strings.TrimSpace(o.Name)
	if err := ValidHostname(o.Name); err != nil {
		return err
	}
	if strings.TrimSpace(o.Plan) == "" {
		return E(ErrInvalid, "plan", "choose a plan")
	}
	o.Image, o.Snapshot = strings.TrimSpace(o.Image), strings.TrimSpace(o.Snapshot)
	switch {
	case o.Image != "" && o.Snapshot != "":
		return E(ErrInvalid, "snapshot", "choose an image or a snapshot, not both")
	case o.Image == "" && o.Snapshot == "":
		return E(ErrInvalid, "image", "choose an image or a snapshot")
	}
	keys := make([]string, 0, len(o.SSHKeys))
	for _, k := range o.SSHKeys {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	o.SSHKeys = keys
	if len(keys) == 0 {
		return E(ErrInvalid, "ssh_keys", "choose at least one SSH key to log in with")
	}
	if len(keys) > 50 {
		return E(ErrInvalid, "ssh_keys", "choose at most 50 keys")
	}
	if len(o.UserData) > MaxUserData {
		return E(ErrInvalid, "user_data", fmt.Sprintf("user-data is %d bytes; the limit is %d KiB", len(o.UserData), MaxUserData>>10))
	}
	if strings.ContainsRune(o.UserData, 0) {
		return E(ErrInvalid, "user_data", "user-data must be text")
	}
	return nil
}

// CreateVM checks the order against the tenant's quota and records the VM as
// pending, all in one transaction: concurrent orders for the same tenant are
// serialised on the tenant row, so together they never exceed the quota.
func (s *Store) CreateVM(ctx context.Context, a Actor, tenantID string, o VMOrder) (VM, error) {
	var vm VM
	t := &Target{Type: "vm", Name: o.Name, TenantID: tenantID}
	err := s.change(ctx, a, "vm.create", t, func(tx *gorm.DB) error {
		if err := o.validate(); err != nil {
			return err
		}
		t.Name = o.Name
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if err := ensureActive(ten); err != nil {
			return err
		}
		var plan Plan
		if err := tx.Where("(id = ? OR name = ?) AND enabled = ?", o.Plan, o.Plan, true).Take(&plan).Error; err != nil {
			if errIsNotFound(err) {
				return E(ErrInvalid, "plan", "this plan does not exist or is no longer offered")
			}
			return err
		}
		if err := s.checkCredit(tx, tenantID, PlanItem(plan.ID)); err != nil {
			return err
		}
		var img Image
		var snap *Snapshot
		if o.Snapshot != "" {
			if snap, img, err = orderSnapshot(tx, tenantID, o.Snapshot, plan); err != nil {
				return err
			}
		} else if err := tx.Where("(id = ? OR name = ?) AND enabled = ? AND kind = ?", o.Image, o.Image, true, ImageVM).Take(&img).Error; err != nil {
			if errIsNotFound(err) {
				return E(ErrInvalid, "image", "this image does not exist or is no longer offered")
			}
			return err
		}
		var n int64
		if err := tx.Model(&SSHKey{}).Where("tenant_id = ? AND id IN ?", tenantID, o.SSHKeys).Count(&n).Error; err != nil {
			return err
		}
		if int(n) != len(o.SSHKeys) {
			return E(ErrInvalid, "ssh_keys", "one of the chosen SSH keys does not exist in your account")
		}
		var taken int64
		if err := tx.Model(&VM{}).Where("tenant_id = ? AND name = ? AND deleted_at IS NULL", tenantID, o.Name).Count(&taken).Error; err != nil {
			return err
		}
		if taken > 0 {
			return E(ErrConflict, "name", "you already have a VM called "+o.Name)
		}
		used, err := usage(tx, tenantID)
		if err != nil {
			return err
		}
		if err := FitPlan(ten.Quota(), used, plan); err != nil {
			return err
		}
		// Capacity is reserved now, at order time, so an accepted order
		// always has room; the provisioner releases it after deleting the VM.
		var hostID string
		if snap != nil {
			// The snapshot's volume is in its host's pool, so the copy is made there.
			hostID, err = s.placeOnHost(tx, snap.HostID, need(plan.VCPUs, plan.MemoryMiB, plan.DiskGiB))
		} else {
			hostID, err = s.placeVM(tx, need(plan.VCPUs, plan.MemoryMiB, plan.DiskGiB))
		}
		if err != nil {
			return err
		}
		source, what := "", img.Name
		if snap != nil {
			source, what = snap.ID, "snapshot "+snap.Name
		}
		ts := now()
		vm = VM{ID: newID(), TenantID: tenantID, Name: o.Name, PlanID: plan.ID, ImageID: img.ID,
			VCPUs: plan.VCPUs, MemoryMiB: plan.MemoryMiB, DiskGiB: plan.DiskGiB,
			State: VMPending, DesiredState: VMRunning, UserData: o.UserData, CreatedBy: a.Email, CreatedAt: ts, UpdatedAt: ts,
			NeedsWork: true, NextAttemptAt: &ts, HostID: &hostID, SourceSnapshotID: source}
		if err := tx.Create(&vm).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "you already have a VM called "+o.Name)
			}
			return fmt.Errorf("create vm: %w", err)
		}
		links := make([]vmSSHKey, len(o.SSHKeys))
		for i, k := range o.SSHKeys {
			links[i] = vmSSHKey{VMID: vm.ID, SSHKeyID: k}
		}
		if err := tx.Create(&links).Error; err != nil {
			return fmt.Errorf("attach keys: %w", err)
		}
		step := VMStep{ID: newID(), VMID: vm.ID, Step: "order", State: StepDone, Message: fmt.Sprintf("Order accepted: %s, %s", plan.Name, what), StartedAt: ts, FinishedAt: &ts}
		if err := tx.Create(&step).Error; err != nil {
			return fmt.Errorf("record order step: %w", err)
		}
		t.ID = vm.ID
		return nil
	})
	return vm, err
}

// VMFilter narrows a staff list of VMs.
type VMFilter struct {
	TenantID string
	Tenant   string // substring of the tenant's name
	State    string
}

// VMSummary is a VM with the names of what it refers to.
type VMSummary struct {
	VM
	PlanName   string
	ImageName  string
	TenantName string
}

func (s *Store) vmQuery(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table("vms").
		Joins("JOIN plans ON plans.id = vms.plan_id").
		Joins("JOIN images ON images.id = vms.image_id").
		Joins("JOIN tenants ON tenants.id = vms.tenant_id").
		Where("vms.deleted_at IS NULL")
}

// listVMs reads a page of VMs and how many there are in all. A page that
// is not full is the last one, so its rows give the total without a
// second pass over the tenant's VMs (the dashboard's and most lists').
func listVMs(q *gorm.DB, p Page) ([]VMSummary, int, error) {
	p = p.norm()
	q = q.Session(&gorm.Session{}) // reused for the count below
	out, err := pageVMs(q, p)
	if err != nil {
		return nil, 0, err
	}
	offset := (p.Number - 1) * p.PerPage
	if len(out) > 0 && len(out) < p.PerPage || len(out) == 0 && offset == 0 {
		return out, offset + len(out), nil
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count vms: %w", err)
	}
	return out, int(total), nil
}

// pageVMs reads a page of VMs, newest first.
func pageVMs(q *gorm.DB, p Page) ([]VMSummary, error) {
	var out []VMSummary
	err := p.apply(q.Select("vms.*, plans.name AS plan_name, images.name AS image_name, tenants.name AS tenant_name").
		Order("vms.created_at DESC, vms.id")).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list vms: %w", err)
	}
	return out, nil
}

// RecentVMs returns a tenant's n newest VMs, without counting them all.
func (s *Store) RecentVMs(ctx context.Context, tenantID string, n int) ([]VMSummary, error) {
	return pageVMs(s.vmQuery(ctx).Where("vms.tenant_id = ?", tenantID), Page{Number: 1, PerPage: n})
}

// ListVMs returns a tenant's VMs, newest first.
func (s *Store) ListVMs(ctx context.Context, tenantID string, p Page) ([]VMSummary, int, error) {
	return listVMs(s.vmQuery(ctx).Where("vms.tenant_id = ?", tenantID), p)
}

// ListAllVMs returns every tenant's VMs for staff.
func (s *Store) ListAllVMs(ctx context.Context, f VMFilter, p Page) ([]VMSummary, int, error) {
	q := s.vmQuery(ctx)
	if f.TenantID != "" {
		q = q.Where("vms.tenant_id = ?", f.TenantID)
	}
	if f.Tenant = strings.ToLower(strings.TrimSpace(f.Tenant)); f.Tenant != "" {
		q = q.Where(likeClause("LOWER(tenants.name)"), "%"+likeEscape(f.Tenant)+"%")
	}
	if f.State != "" {
		q = q.Where("vms.state = ?", f.State)
	}
	return listVMs(q, p)
}

// VMDetail is a VM with its keys, timeline and operations.
type VMDetail struct {
	VMSummary
	Keys       []SSHKey
	Steps      []VMStep
	Operations []Operation
}

// GetVM returns one of a tenant's VMs; another tenant's id is not found.
// Staff pass tenantID "" to read any VM.
func (s *Store) GetVM(ctx context.Context, tenantID, id string) (VMDetail, error) {
	q := s.vmQuery(ctx).Where("vms.id = ?", id)
	if tenantID != "" {
		q = q.Where("vms.tenant_id = ?", tenantID)
	}
	list, _, err := listVMs(q, Page{Number: 1, PerPage: 1})
	if err != nil {
		return VMDetail{}, err
	}
	if len(list) == 0 {
		return VMDetail{}, notFound("vm")
	}
	d := VMDetail{VMSummary: list[0]}
	db := s.db.WithContext(ctx)
	if err := db.Where("id IN (SELECT ssh_key_id FROM vm_ssh_keys WHERE vm_id = ?)", id).Order("name").Find(&d.Keys).Error; err != nil {
		return VMDetail{}, fmt.Errorf("load vm keys: %w", err)
	}
	if err := db.Where("vm_id = ?", id).Order("started_at, id").Find(&d.Steps).Error; err != nil {
		return VMDetail{}, fmt.Errorf("load vm timeline: %w", err)
	}
	if err := db.Where("vm_id = ?", id).Order("created_at DESC, id DESC").Limit(20).Find(&d.Operations).Error; err != nil {
		return VMDetail{}, fmt.Errorf("load vm operations: %w", err)
	}
	return d, nil
}

// actionRule says in which states an action may be queued and what state
// the customer then wants.
type actionRule struct {
	from    []string
	desired string // "" keeps the current desired state
}

var actionRules = map[string]actionRule{
	OpStart:   {from: []string{VMStopped, VMError}, desired: VMRunning},
	OpStop:    {from: []string{VMRunning, VMError}, desired: VMStopped},
	OpReboot:  {from: []string{VMRunning}},
	OpRebuild: {from: []string{VMRunning, VMStopped, VMError}},
	OpResize:  {from: []string{VMRunning, VMStopped}},
	OpDelete: {from: []string{VMPending, VMProvisioning, VMRunning, VMStopped, VMStarting, VMStopping,
		VMRebooting, VMRebuilding, VMError}, desired: VMDeleted},
}

// ValidAction reports whether t is an action customers can queue.
func ValidAction(t string) bool { _, ok := actionRules[t]; return ok }

// RequestAction queues an operation on a VM for the provisioner. Only one
// operation may be outstanding at a time, except that delete may always be
// asked for and supersedes the queued ones. A rebuild keeps the VM's image
// (RebuildVM chooses another); a resize needs a plan (ResizeVM).
func (s *Store) RequestAction(ctx context.Context, a Actor, tenantID, vmID, action string) (Operation, error) {
	switch action {
	case OpRebuild:
		return s.RebuildVM(ctx, a, tenantID, vmID, "")
	case OpResize:
		return s.ResizeVM(ctx, a, tenantID, vmID, "")
	}
	return s.requestAction(ctx, a, tenantID, vmID, action, nil)
}

// actionChange is what an action changes in the VM record besides queueing
// its operation. It runs in the action's transaction, with the tenant row
// locked and the VM's state and outstanding operations already checked,
// and returns the audit entry's detail.
type actionChange func(tx *gorm.DB, ten Tenant, vm VM) (detail string, err error)

// requestAction queues action; apply, when set, changes the VM record in
// the same transaction.
func (s *Store) requestAction(ctx context.Context, a Actor, tenantID, vmID, action string, apply actionChange) (Operation, error) {
	return s.requestActionOn(ctx, a, "", tenantID, vmID, action, apply, nil)
}

// requestActionOn is requestAction under another audit action, when
// auditAction is set (a password reset queues a reboot), and for the
// snapshot operations, when snapID is set: the queued operation names the
// snapshot *snapID holds once apply has run.
func (s *Store) requestActionOn(ctx context.Context, a Actor, auditAction, tenantID, vmID, action string, apply actionChange, snapID *string) (Operation, error) {
	rule, ok := actionRules[action]
	if snapID != nil {
		rule, ok = snapshotRules[action]
	}
	if auditAction == "" {
		auditAction = "vm." + action
		if !ok {
			auditAction = "vm.action"
		}
	}
	var op Operation
	t := &Target{Type: "vm", ID: vmID, TenantID: tenantID}
	err := s.changeDetail(ctx, a, auditAction, t, func(tx *gorm.DB) (string, error) {
		if !ok {
			return "", E(ErrInvalid, "type", "unknown action; use start, stop, reboot, rebuild, resize or delete")
		}
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return "", err
		}
		if err := ensureActive(ten); err != nil && action != OpDelete && action != OpStop {
			return "", err
		}
		var vm VM
		if err := tx.Where("id = ? AND tenant_id = ? AND deleted_at IS NULL", vmID, tenantID).Take(&vm).Error; err != nil {
			if errIsNotFound(err) {
				return "", notFound("vm")
			}
			return "", err
		}
		t.Name = vm.Name
		if !slices.Contains(rule.from, vm.State) {
			return "", E(ErrInvalidTransition, "type", transitionMessage(action, vm.State))
		}
		var pending []Operation
		if err := tx.Where("vm_id = ? AND state IN ?", vmID, []string{OpQueued, OpRunning}).Find(&pending).Error; err != nil {
			return "", err
		}
		ts := now()
		for _, p := range pending {
			if action != OpDelete {
				return "", E(ErrConflict, "type", fmt.Sprintf("a %s is already %s for this VM; wait for it to finish", p.Type, p.State))
			}
			if p.State == OpQueued {
				if err := tx.Model(&Operation{}).Where("id = ? AND state = ?", p.ID, OpQueued).
					Updates(map[string]any{"state": OpFailed, "message": "cancelled: the VM is being deleted", "finished_at": ts}).Error; err != nil {
					return "", err
				}
			}
		}
		if action == OpDelete {
			// Deleting the VM deletes its snapshots.
			if err := snapshotCopying(tx, "snapshots.vm_id", vmID); err != nil {
				return "", err
			}
		}
		var detail string
		if apply != nil {
			if detail, err = apply(tx, ten, vm); err != nil {
				return "", err
			}
		}
		op = Operation{ID: newID(), VMID: vmID, TenantID: tenantID, Type: action, State: OpQueued, RequestedBy: a.Email, CreatedAt: ts}
		if snapID != nil {
			op.SnapshotID = *snapID
		}
		if err := tx.Create(&op).Error; err != nil {
			return "", fmt.Errorf("queue operation: %w", err)
		}
		upd := map[string]any{"updated_at": ts, "needs_work": true, "next_attempt_at": ts, "attempts": 0}
		if rule.desired != "" {
			upd["desired_state"] = rule.desired
		}
		if action == OpDelete {
			upd["state"] = VMDeleting
		}
		return detail, tx.Model(&VM{}).Where("id = ?", vmID).Updates(upd).Error
	})
	return op, err
}

func transitionMessage(action, state string) string {
	switch {
	case state == VMPending || state == VMProvisioning:
		return "the VM is still being created; only delete is possible until it is running"
	case state == VMDeleting:
		return "the VM is being deleted"
	case action == OpStart && state == VMRunning:
		return "the VM is already running"
	case action == OpStop && state == VMStopped:
		return "the VM is already stopped"
	case action == OpReboot && state == VMStopped:
		return "the VM is stopped; start it instead"
	case action == OpResize && state == VMError:
		return "the VM is in error; start or rebuild it before changing its plan"
	}
	return fmt.Sprintf("cannot %s a VM that is %s", action, state)
}
