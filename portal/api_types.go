package portal

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// JSON shapes of the API objects. Times are always UTC.

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// itemsResponse wraps a short, unpaginated list (the catalogue).
type itemsResponse[T any] struct {
	Items []T `json:"items"`
}

func newItems[T any](items []T) itemsResponse[T] {
	if items == nil {
		items = []T{}
	}
	return itemsResponse[T]{Items: items}
}

type sshKeyJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Bits        int       `json:"bits"`
	Fingerprint string    `json:"fingerprint"`
	PublicKey   string    `json:"public_key"`
	Comment     string    `json:"comment"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
}

func toSSHKeyJSON(k store.SSHKey) sshKeyJSON {
	return sshKeyJSON{ID: k.ID, Name: k.Name, Type: k.Type, Bits: k.Bits, Fingerprint: k.Fingerprint,
		PublicKey: k.PublicKey, Comment: k.Comment, CreatedBy: k.CreatedBy, CreatedAt: utc(k.CreatedAt)}
}

type quotaResponse struct {
	Limits store.Quota `json:"limits"`
	Used   store.Quota `json:"used"`
}

type planJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	VCPUs     int64  `json:"vcpus"`
	MemoryMiB int64  `json:"memory_mib"`
	DiskGiB   int64  `json:"disk_gib"`
	Fits      bool   `json:"fits"`
	Reason    string `json:"reason,omitempty"`
	// Price is the plan's current price; null when it has none.
	Price *priceJSON `json:"price"`
}

type imageJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	OS      string `json:"os"`
	Version string `json:"version"`
}

type refJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type vmJSON struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	State         string   `json:"state"`
	DesiredState  string   `json:"desired_state"`
	Plan          refJSON  `json:"plan"`
	Image         refJSON  `json:"image"`
	VCPUs         int64    `json:"vcpus"`
	MemoryMiB     int64    `json:"memory_mib"`
	DiskGiB       int64    `json:"disk_gib"`
	IP            string   `json:"ip"`
	DNSName       string   `json:"dns_name"`
	SSHKeys       []string `json:"ssh_keys"`
	UserDataBytes int      `json:"user_data_bytes"`
	LastError     string   `json:"last_error"`
	// SourceSnapshotID is the snapshot the VM's disk was first copied
	// from; empty for a VM made from an image.
	SourceSnapshotID string    `json:"source_snapshot_id"`
	CreatedBy        string    `json:"created_by"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// toVMJSON describes a VM; the caller fills dns_name, which needs the
// tenant's slug.
func toVMJSON(v store.VMSummary, keys []string) vmJSON {
	if keys == nil {
		keys = []string{}
	}
	return vmJSON{ID: v.ID, Name: v.Name, State: v.State, DesiredState: v.DesiredState,
		Plan: refJSON{ID: v.PlanID, Name: v.PlanName}, Image: refJSON{ID: v.ImageID, Name: v.ImageName},
		VCPUs: v.VCPUs, MemoryMiB: v.MemoryMiB, DiskGiB: v.DiskGiB, IP: v.IP, SSHKeys: keys,
		UserDataBytes: len(v.UserData), LastError: v.LastError, SourceSnapshotID: v.SourceSnapshotID, CreatedBy: v.CreatedBy,
		CreatedAt: utc(v.CreatedAt), UpdatedAt: utc(v.UpdatedAt)}
}

type stepJSON struct {
	Step       string     `json:"step"`
	State      string     `json:"state"`
	Message    string     `json:"message"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

type operationJSON struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	State       string     `json:"state"`
	Message     string     `json:"message"`
	RequestedBy string     `json:"requested_by"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

func toOperationJSON(o store.Operation) operationJSON {
	return operationJSON{ID: o.ID, Type: o.Type, State: o.State, Message: o.Message, RequestedBy: o.RequestedBy,
		CreatedAt: utc(o.CreatedAt), StartedAt: utcPtr(o.StartedAt), FinishedAt: utcPtr(o.FinishedAt)}
}

// vmDetailJSON is one VM with its timeline and recent operations; the
// steps' staff-only detail is left out.
type vmDetailJSON struct {
	vmJSON
	Timeline   []stepJSON      `json:"timeline"`
	Operations []operationJSON `json:"operations"`
}

func toVMDetailJSON(d store.VMDetail) vmDetailJSON {
	keys := make([]string, len(d.Keys))
	for i, k := range d.Keys {
		keys[i] = k.ID
	}
	out := vmDetailJSON{vmJSON: toVMJSON(d.VMSummary, keys), Timeline: []stepJSON{}, Operations: []operationJSON{}}
	for _, st := range d.Steps {
		out.Timeline = append(out.Timeline, stepJSON{Step: st.Step, State: st.State, Message: st.Message,
			StartedAt: utc(st.StartedAt), FinishedAt: utcPtr(st.FinishedAt)})
	}
	for _, o := range d.Operations {
		out.Operations = append(out.Operations, toOperationJSON(o))
	}
	return out
}

type adminVMJSON struct {
	vmJSON
	TenantID   string   `json:"tenant_id"`
	TenantName string   `json:"tenant_name"`
	Host       *refJSON `json:"host"` // null until placed
}

type auditJSON struct {
	ID         string    `json:"id"`
	At         time.Time `json:"at"`
	ActorEmail string    `json:"actor_email"`
	TenantID   string    `json:"tenant_id"`
	Action     string    `json:"action"`
	TargetType string    `json:"target_type"`
	TargetID   string    `json:"target_id"`
	TargetName string    `json:"target_name"`
	SourceIP   string    `json:"source_ip"`
	Result     string    `json:"result"`
	Detail     string    `json:"detail"`
}

func toAuditJSON(e store.AuditEntry) auditJSON {
	return auditJSON{ID: e.ID, At: utc(e.At), ActorEmail: e.ActorEmail, TenantID: e.TenantID, Action: e.Action,
		TargetType: e.TargetType, TargetID: e.TargetID, TargetName: e.TargetName, SourceIP: e.SourceIP,
		Result: e.Result, Detail: e.Detail}
}

type adminPlanJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	VCPUs     int64  `json:"vcpus"`
	MemoryMiB int64  `json:"memory_mib"`
	DiskGiB   int64  `json:"disk_gib"`
	Enabled   bool   `json:"enabled"`
	VMCount   int64  `json:"vm_count"`
}

func toAdminPlanJSON(p store.Plan, vms int64) adminPlanJSON {
	return adminPlanJSON{ID: p.ID, Name: p.Name, VCPUs: p.VCPUs, MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB, Enabled: p.Enabled, VMCount: vms}
}

type adminImageJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	OS        string `json:"os"`
	Version   string `json:"version"`
	SourceURL string `json:"source_url"`
	Checksum  string `json:"checksum"`
	Kind      string `json:"kind"`
	Enabled   bool   `json:"enabled"`

	KernelURL      string `json:"kernel_url"`
	KernelChecksum string `json:"kernel_checksum"`
	InitrdURL      string `json:"initrd_url"`
	InitrdChecksum string `json:"initrd_checksum"`
}

func toAdminImageJSON(im store.Image) adminImageJSON {
	return adminImageJSON{ID: im.ID, Name: im.Name, OS: im.OS, Version: im.Version, SourceURL: im.SourceURL, Checksum: im.Checksum, Kind: im.Kind, Enabled: im.Enabled,
		KernelURL: im.KernelURL, KernelChecksum: im.KernelChecksum, InitrdURL: im.InitrdURL, InitrdChecksum: im.InitrdChecksum}
}

type adminTenantJSON struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Slug          string      `json:"slug"`
	Status        string      `json:"status"`
	SuspendReason string      `json:"suspend_reason"`
	OwnerEmail    string      `json:"owner_email"`
	VMCount       int64       `json:"vm_count"`
	Quota         store.Quota `json:"quota"`
	CreatedAt     time.Time   `json:"created_at"`
}

func toAdminTenantJSON(t store.TenantSummary) adminTenantJSON {
	return adminTenantJSON{ID: t.ID, Name: t.Name, Slug: t.Slug, Status: t.Status, SuspendReason: t.SuspendReason,
		OwnerEmail: t.OwnerEmail, VMCount: t.VMCount, Quota: t.Quota(), CreatedAt: utc(t.CreatedAt)}
}

type adminTenantDetailJSON struct {
	adminTenantJSON
	Used    store.Quota `json:"used"`
	Members []userJSON  `json:"members"`
}

type adminUserJSON struct {
	userJSON
	TenantID   string `json:"tenant_id"`
	TenantName string `json:"tenant_name"`
}

// quotaInput is a full set of limits; pointers tell a missing figure from 0.
type quotaInput struct {
	Instances    *int64 `json:"instances"`
	VCPUs        *int64 `json:"vcpus"`
	MemoryMiB    *int64 `json:"memory_mib"`
	DiskGiB      *int64 `json:"disk_gib"`
	SSHKeys      *int64 `json:"ssh_keys"`
	PortForwards *int64 `json:"port_forwards"`
	// The snapshot limits may be left out; they then stay as they are
	// (keep), so that clients written before snapshots still work.
	Snapshots   *int64 `json:"snapshots"`
	SnapshotGiB *int64 `json:"snapshot_gib"`
}

// quota is the limits sent; keep supplies the snapshot limits left out.
func (in quotaInput) quota(keep store.Quota) (store.Quota, error) {
	q := store.Quota{Snapshots: keep.Snapshots, SnapshotGiB: keep.SnapshotGiB}
	if in.Snapshots != nil {
		q.Snapshots = *in.Snapshots
	}
	if in.SnapshotGiB != nil {
		q.SnapshotGiB = *in.SnapshotGiB
	}
	for _, f := range []struct {
		name string
		src  *int64
		dst  *int64
	}{
		{"instances", in.Instances, &q.Instances}, {"vcpus", in.VCPUs, &q.VCPUs}, {"memory_mib", in.MemoryMiB, &q.MemoryMiB},
		{"disk_gib", in.DiskGiB, &q.DiskGiB}, {"ssh_keys", in.SSHKeys, &q.SSHKeys}, {"port_forwards", in.PortForwards, &q.PortForwards},
	} {
		if f.src == nil {
			return q, errMissing(f.name)
		}
		*f.dst = *f.src
	}
	return q, q.Validate()
}

// errMissing refuses a request body that leaves out a required field.
func errMissing(field string) error {
	return store.E(store.ErrInvalid, field, field+" is required")
}

// errBadQuery refuses a query parameter, like apiPage does.
func errBadQuery(field, msg string) error {
	return &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: field, message: msg}
}
