package store

import "time"

// Tenant roles and staff roles.
const (
	RoleOwner    = "owner"
	RoleMember   = "member"
	RoleReadOnly = "readonly"
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleAuditor  = "auditor"
)

// Tenant statuses.
const (
	TenantActive    = "active"
	TenantSuspended = "suspended"
)

// Tenant is a customer organisation.
type Tenant struct {
	ID                string
	Name              string
	Slug              string
	Status            string
	SuspendReason     string
	QuotaInstances    int64
	QuotaVCPUs        int64 `gorm:"column:quota_vcpus"`
	QuotaMemoryMiB    int64 `gorm:"column:quota_memory_mib"`
	QuotaDiskGiB      int64 `gorm:"column:quota_disk_gib"`
	QuotaSSHKeys      int64 `gorm:"column:quota_ssh_keys"`
	QuotaPortForwards int64
	QuotaSnapshots    int64
	QuotaSnapshotGiB  int64 `gorm:"column:quota_snapshot_gib"`
	// CreditLimitMinor is how far below zero the balance may go before
	// orders are refused; nil: the ISP's default (none unless set).
	CreditLimitMinor *int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Quota returns the tenant's limits.
func (t Tenant) Quota() Quota {
	return Quota{t.QuotaInstances, t.QuotaVCPUs, t.QuotaMemoryMiB, t.QuotaDiskGiB, t.QuotaSSHKeys, t.QuotaPortForwards,
		t.QuotaSnapshots, t.QuotaSnapshotGiB}
}

func (t *Tenant) setQuota(q Quota) {
	t.QuotaInstances, t.QuotaVCPUs, t.QuotaMemoryMiB = q.Instances, q.VCPUs, q.MemoryMiB
	t.QuotaDiskGiB, t.QuotaSSHKeys, t.QuotaPortForwards = q.DiskGiB, q.SSHKeys, q.PortForwards
	t.QuotaSnapshots, t.QuotaSnapshotGiB = q.Snapshots, q.SnapshotGiB
}

// User is a person who signs in: a tenant member (TenantID set) or staff.
type User struct {
	ID           string
	Email        string
	PasswordHash string
	TenantID     *string
	Role         string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastLoginAt  *time.Time
	// TOTPSecret is the sealed authenticator secret: set while enrolling,
	// in force once TOTPEnabledAt is set.
	TOTPSecret    string     `gorm:"column:totp_secret"`
	TOTPEnabledAt *time.Time `gorm:"column:totp_enabled_at"`
	// TOTPLastStep is the last time step whose code was accepted, so that a
	// code works once.
	TOTPLastStep int64 `gorm:"column:totp_last_step"`
}

// TwoFactor reports whether the user signs in with a second factor.
func (u User) TwoFactor() bool { return u.TOTPEnabledAt != nil }

// RecoveryCode is a one-time code that stands in for the authenticator;
// only its hash is kept.
type RecoveryCode struct {
	ID        string
	UserID    string
	CodeHash  string
	CreatedAt time.Time
	UsedAt    *time.Time
}

// IsStaff reports whether the user belongs to the ISP rather than a tenant.
func (u User) IsStaff() bool { return u.TenantID == nil }

// Tenant returns the tenant id, or "" for staff.
func (u User) Tenant() string {
	if u.TenantID == nil {
		return ""
	}
	return *u.TenantID
}

// Invitation lets someone join a tenant by following a link once.
type Invitation struct {
	ID         string
	TenantID   string
	Email      string
	Role       string
	TokenHash  string
	InvitedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
}

// APIToken is a long-lived bearer credential; only its hash is stored.
type APIToken struct {
	ID         string
	UserID     string
	Name       string
	Scope      string
	Prefix     string
	TokenHash  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// API token scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// SSHKey is a public key shared by the members of a tenant.
type SSHKey struct {
	ID          string
	TenantID    string
	Name        string
	Type        string
	Bits        int
	Fingerprint string
	PublicKey   string
	Comment     string
	CreatedBy   string
	CreatedAt   time.Time
}

// TableName keeps the table name plain.
func (SSHKey) TableName() string { return "ssh_keys" }

// Plan is a VM size offered to customers.
type Plan struct {
	ID        string
	Name      string
	VCPUs     int64 `gorm:"column:vcpus"`
	MemoryMiB int64 `gorm:"column:memory_mib"`
	DiskGiB   int64 `gorm:"column:disk_gib"`
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Image is an operating system image VMs are created from.
type Image struct {
	ID        string
	Name      string
	OS        string `gorm:"column:os"`
	Version   string
	SourceURL string `gorm:"column:source_url"`
	Checksum  string
	// KernelURL and InitrdURL, with their checksums, boot images that have
	// no boot loader of their own; empty for ordinary disk images.
	KernelURL      string `gorm:"column:kernel_url"`
	KernelChecksum string
	InitrdURL      string `gorm:"column:initrd_url"`
	InitrdChecksum string
	// Kind is ImageVM or ImageMachine.
	Kind      string
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Image kinds: a VM image is a qcow2 disk libvirt boots; a machine image is
// a raw (optionally gzip-compressed) disk with a partition table and a boot
// loader that the deploy agent writes to a bare-metal machine's disk.
const (
	ImageVM      = "vm"
	ImageMachine = "machine"
)

// VM states as the provisioner reports them.
const (
	VMPending      = "pending"
	VMProvisioning = "provisioning"
	VMRunning      = "running"
	VMStopped      = "stopped"
	VMStarting     = "starting"
	VMStopping     = "stopping"
	VMRebooting    = "rebooting"
	VMRebuilding   = "rebuilding"
	VMDeleting     = "deleting"
	VMDeleted      = "deleted"
	VMError        = "error"
)

// VM is a customer's virtual machine: desired state written by the portal,
// observed state written by the provisioner.
type VM struct {
	ID           string
	TenantID     string
	Name         string
	PlanID       string
	ImageID      string
	VCPUs        int64 `gorm:"column:vcpus"`
	MemoryMiB    int64 `gorm:"column:memory_mib"`
	DiskGiB      int64 `gorm:"column:disk_gib"`
	State        string
	DesiredState string
	UserData     string
	IP           string `gorm:"column:ip"`
	LastError    string
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DeletedAt    *time.Time `gorm:"column:deleted_at"`

	// Placement and identity, set by the provisioner.
	HostID        *string
	MAC           string `gorm:"column:mac"`
	MetadataToken string
	DiskErasedAt  *time.Time

	// SourceSnapshotID is the snapshot a VM ordered from one has its disk
	// copied from; empty for a VM made from its image.
	SourceSnapshotID string

	// Console rescue (ResetVMPassword): the SHA-512 crypt hash of the
	// password last reset and how many resets there were.
	RescueGeneration   int
	RescuePasswordHash string

	// Work engine bookkeeping: the portal sets NeedsWork whenever it asks
	// for something; a worker holds the VM until LeaseUntil.
	NeedsWork     bool
	Attempts      int
	NextAttemptAt *time.Time
	LeaseOwner    string
	LeaseUntil    *time.Time
}

// TableName keeps the table name plain.
func (VM) TableName() string { return "vms" }

type vmSSHKey struct {
	VMID     string `gorm:"column:vm_id;primaryKey"`
	SSHKeyID string `gorm:"column:ssh_key_id;primaryKey"`
}

func (vmSSHKey) TableName() string { return "vm_ssh_keys" }

// Step states.
const (
	StepRunning = "running"
	StepDone    = "done"
	StepFailed  = "failed"
)

// VMStep is one entry of a VM's timeline.
type VMStep struct {
	ID         string
	VMID       string `gorm:"column:vm_id"`
	Step       string
	State      string
	Message    string
	Detail     string // staff only
	StartedAt  time.Time
	FinishedAt *time.Time
}

// TableName keeps the table name plain.
func (VMStep) TableName() string { return "vm_steps" }

// Operation types customers can queue.
const (
	OpStart   = "start"
	OpStop    = "stop"
	OpReboot  = "reboot"
	OpRebuild = "rebuild"
	OpResize  = "resize"
	OpDelete  = "delete"
	// Snapshot operations: each names its snapshot (Operation.SnapshotID).
	OpSnapshot       = "snapshot"
	OpRestore        = "restore"
	OpSnapshotDelete = "snapshot-delete"
)

// Operation states.
const (
	OpQueued  = "queued"
	OpRunning = "running"
	OpDone    = "done"
	OpFailed  = "failed"
)

// Operation is a one-shot action on a VM, executed by the provisioner.
type Operation struct {
	ID          string
	VMID        string `gorm:"column:vm_id"`
	TenantID    string
	Type        string
	State       string
	Message     string
	RequestedBy string
	SnapshotID  string
	Attempts    int
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID         string
	At         time.Time
	ActorID    string
	ActorEmail string
	TenantID   string
	Action     string
	TargetType string
	TargetID   string
	TargetName string
	SourceIP   string `gorm:"column:source_ip"`
	Result     string
	Detail     string
}

// TableName keeps the table name plain.
func (AuditEntry) TableName() string { return "audit_log" }

type setting struct {
	Key       string `gorm:"primaryKey"`
	Value     string
	CreatedAt time.Time
}

func (setting) TableName() string { return "settings" }

type quotaDefaults struct {
	ID           int
	Instances    int64
	VCPUs        int64 `gorm:"column:vcpus"`
	MemoryMiB    int64 `gorm:"column:memory_mib"`
	DiskGiB      int64 `gorm:"column:disk_gib"`
	SSHKeys      int64 `gorm:"column:ssh_keys"`
	PortForwards int64
	Snapshots    int64
	SnapshotGiB  int64 `gorm:"column:snapshot_gib"`
	UpdatedAt    time.Time
}

func (quotaDefaults) TableName() string { return "quota_defaults" }

func (d quotaDefaults) quota() Quota {
	return Quota{d.Instances, d.VCPUs, d.MemoryMiB, d.DiskGiB, d.SSHKeys, d.PortForwards, d.Snapshots, d.SnapshotGiB}
}
