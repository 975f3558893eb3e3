package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// Host states.
const (
	HostNew   = "new"   // registered, facts not yet discovered
	HostReady = "ready" // facts discovered; may take VMs
	HostError = "error" // the last discovery failed
)

// Host is a KVM host VMs are placed on. The alloc_* columns are the capacity
// ledger: what the VMs placed on it have reserved.
type Host struct {
	ID          string
	Name        string
	URI         string `gorm:"column:uri"`
	SSHHostKey  string `gorm:"column:ssh_host_key"`
	Enabled     bool
	Maintenance bool
	State       string
	LastError   string
	StoragePool string
	Bridge      string

	CPUModel    string `gorm:"column:cpu_model"`
	Cores       int64  `gorm:"column:cores"`
	MemoryMiB   int64  `gorm:"column:memory_mib"`
	DiskGiB     int64  `gorm:"column:disk_gib"`
	DiskFreeGiB int64  `gorm:"column:disk_free_gib"`

	CPURatio    float64 `gorm:"column:cpu_ratio"`
	MemoryRatio float64 `gorm:"column:memory_ratio"`
	DiskRatio   float64 `gorm:"column:disk_ratio"`

	ReservedCores     int64 `gorm:"column:reserved_cores"`
	ReservedMemoryMiB int64 `gorm:"column:reserved_memory_mib"`
	ReservedDiskGiB   int64 `gorm:"column:reserved_disk_gib"`

	AllocVCPUs     int64 `gorm:"column:alloc_vcpus"`
	AllocMemoryMiB int64 `gorm:"column:alloc_memory_mib"`
	AllocDiskGiB   int64 `gorm:"column:alloc_disk_gib"`

	RefreshedAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// TableName keeps the table name plain.
func (Host) TableName() string { return "hosts" }

// Capacity returns the figures placement works with.
func (h Host) Capacity() capacity.Host {
	return capacity.Host{
		ID: h.ID, Name: h.Name, Enabled: h.Enabled, Maintenance: h.Maintenance, Ready: h.State == HostReady,
		Cores: h.Cores, MemoryMiB: h.MemoryMiB, DiskGiB: h.DiskGiB,
		CPURatio: h.CPURatio, MemoryRatio: h.MemoryRatio, DiskRatio: h.DiskRatio,
		Reserved:  capacity.Resources{VCPUs: h.ReservedCores, MemoryMiB: h.ReservedMemoryMiB, DiskGiB: h.ReservedDiskGiB},
		Allocated: capacity.Resources{VCPUs: h.AllocVCPUs, MemoryMiB: h.AllocMemoryMiB, DiskGiB: h.AllocDiskGiB},
	}
}

// HostSummary is a host with its capacity figures and how many VMs it holds.
type HostSummary struct {
	Host
	Figures capacity.Figures
	VMs     int64
}

// HostInput is what staff enter to register a host. Zero ratios take the
// defaults (4.0× CPU, 1.0× memory, 1.0× disk).
type HostInput struct {
	Name              string
	URI               string // test:///default, qemu:///system or qemu+ssh://user@host/system
	CPURatio          float64
	MemoryRatio       float64
	DiskRatio         float64
	ReservedCores     int64
	ReservedMemoryMiB int64
	ReservedDiskGiB   int64
	StoragePool       string // libvirt storage pool; "" is "default"
	Bridge            string
}

// HostSettings is what staff may change on a registered host.
type HostSettings struct {
	CPURatio          float64
	MemoryRatio       float64
	DiskRatio         float64
	ReservedCores     int64
	ReservedMemoryMiB int64
	ReservedDiskGiB   int64
	Maintenance       bool
	Enabled           bool
}

// Facts are what discovery learns about a host.
type Facts struct {
	CPUModel    string
	Cores       int64
	MemoryMiB   int64
	DiskGiB     int64
	DiskFreeGiB int64
}

func (in *HostInput) validate() error {
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	in.URI = strings.TrimSpace(in.URI)
	in.StoragePool = strings.TrimSpace(in.StoragePool)
	in.Bridge = strings.TrimSpace(in.Bridge)
	if in.StoragePool == "" {
		in.StoragePool = "default"
	}
	if in.CPURatio == 0 {
		in.CPURatio = capacity.DefaultCPURatio
	}
	if in.MemoryRatio == 0 {
		in.MemoryRatio = capacity.DefaultMemoryRatio
	}
	if in.DiskRatio == 0 {
		in.DiskRatio = capacity.DefaultDiskRatio
	}
	if !hostnameLabel.MatchString(in.Name) {
		return E(ErrInvalid, "name", "use a hostname label: 1–63 lower-case letters, digits and dashes, not starting or ending with a dash")
	}
	if err := validHostURI(in.URI); err != nil {
		return err
	}
	if !catalogName.MatchString(in.StoragePool) {
		return E(ErrInvalid, "storage_pool", "use a libvirt pool name: lower-case letters, digits, dots, dashes or underscores")
	}
	if in.Bridge != "" && !validIfName(in.Bridge) {
		return E(ErrInvalid, "bridge", "use an interface name of at most 15 letters, digits, dots, dashes or underscores")
	}
	return HostSettings{CPURatio: in.CPURatio, MemoryRatio: in.MemoryRatio, DiskRatio: in.DiskRatio,
		ReservedCores: in.ReservedCores, ReservedMemoryMiB: in.ReservedMemoryMiB, ReservedDiskGiB: in.ReservedDiskGiB}.validate()
}

func validIfName(s string) bool {
	if len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func validHostURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return E(ErrInvalid, "uri", "give a libvirt URI such as qemu+ssh://root@kvm-1.example.net/system")
	}
	switch u.Scheme {
	case "test", "qemu":
		if u.Host != "" {
			return E(ErrInvalid, "uri", u.Scheme+" URIs are local: use "+u.Scheme+":///… or qemu+ssh:// for a remote host")
		}
	case "qemu+ssh":
		if u.Hostname() == "" {
			return E(ErrInvalid, "uri", "a qemu+ssh URI needs a host: qemu+ssh://root@kvm-1.example.net/system")
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			return E(ErrInvalid, "uri", "do not put a password in the URI; the provisioner logs in with its SSH key")
		}
	default:
		return E(ErrInvalid, "uri", "the URI scheme must be test, qemu or qemu+ssh")
	}
	return nil
}

func (h HostSettings) validate() error {
	switch {
	case !(h.CPURatio >= capacity.MinCPURatio && h.CPURatio <= capacity.MaxCPURatio):
		return E(ErrInvalid, "cpu_ratio", fmt.Sprintf("the CPU overcommit ratio must be between %.1f and %.1f", capacity.MinCPURatio, capacity.MaxCPURatio))
	case !(h.MemoryRatio >= capacity.MinMemoryRatio && h.MemoryRatio <= capacity.MaxMemoryRatio):
		return E(ErrInvalid, "memory_ratio", fmt.Sprintf("the memory overcommit ratio must be between %.1f and %.1f", capacity.MinMemoryRatio, capacity.MaxMemoryRatio))
	case !(h.DiskRatio >= capacity.MinDiskRatio && h.DiskRatio <= capacity.MaxDiskRatio):
		return E(ErrInvalid, "disk_ratio", fmt.Sprintf("the disk overcommit ratio must be between %.1f and %.1f", capacity.MinDiskRatio, capacity.MaxDiskRatio))
	case h.ReservedCores < 0 || h.ReservedCores > QuotaMax:
		return E(ErrInvalid, "reserved_cores", "must be zero or more")
	case h.ReservedMemoryMiB < 0 || h.ReservedMemoryMiB > QuotaMax:
		return E(ErrInvalid, "reserved_memory_mib", "must be zero or more")
	case h.ReservedDiskGiB < 0 || h.ReservedDiskGiB > QuotaMax:
		return E(ErrInvalid, "reserved_disk_gib", "must be zero or more")
	}
	return nil
}

// CreateHost registers a host. It takes no VMs until discovery has recorded
// its facts (RecordHostFacts).
func (s *Store) CreateHost(ctx context.Context, a Actor, in HostInput) (Host, error) {
	var h Host
	t := &Target{Type: "host", Name: in.Name}
	err := s.change(ctx, a, "host.create", t, func(tx *gorm.DB) error {
		if err := in.validate(); err != nil {
			return err
		}
		t.Name = in.Name
		ts := now()
		h = Host{ID: newID(), Name: in.Name, URI: in.URI, Enabled: true, State: HostNew, StoragePool: in.StoragePool, Bridge: in.Bridge,
			CPURatio: in.CPURatio, MemoryRatio: in.MemoryRatio, DiskRatio: in.DiskRatio,
			ReservedCores: in.ReservedCores, ReservedMemoryMiB: in.ReservedMemoryMiB, ReservedDiskGiB: in.ReservedDiskGiB,
			CreatedAt: ts, UpdatedAt: ts}
		if err := tx.Create(&h).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "a host called "+in.Name+" already exists")
			}
			return fmt.Errorf("create host: %w", err)
		}
		t.ID = h.ID
		return nil
	})
	return h, err
}

func (s *Store) hostSummaries(q *gorm.DB) ([]HostSummary, error) {
	var hosts []Host
	if err := q.Order("name, id").Find(&hosts).Error; err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	out := make([]HostSummary, len(hosts))
	ids := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = HostSummary{Host: h, Figures: h.Capacity().Figures()}
		ids[i] = h.ID
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Session(&gorm.Session{NewDB: true}).Model(&VM{}).Where("host_id IN ?", ids).
		Select("host_id, COUNT(*)").Group("host_id").Rows()
	if err != nil {
		return nil, fmt.Errorf("count vms per host: %w", err)
	}
	defer rows.Close()
	n := map[string]int64{}
	for rows.Next() {
		var id string
		var c int64
		if err := rows.Scan(&id, &c); err != nil {
			return nil, fmt.Errorf("count vms per host: %w", err)
		}
		n[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count vms per host: %w", err)
	}
	for i := range out {
		out[i].VMs = n[out[i].ID]
	}
	return out, nil
}

// ListHosts returns every host by name, with its capacity figures.
func (s *Store) ListHosts(ctx context.Context) ([]HostSummary, error) {
	return s.hostSummaries(s.db.WithContext(ctx).Model(&Host{}))
}

// GetHost finds a host by id or by name.
func (s *Store) GetHost(ctx context.Context, idOrName string) (HostSummary, error) {
	list, err := s.hostSummaries(s.db.WithContext(ctx).Model(&Host{}).Where("id = ? OR name = ?", idOrName, idOrName))
	if err != nil {
		return HostSummary{}, err
	}
	if len(list) == 0 {
		return HostSummary{}, notFound("host")
	}
	return list[0], nil
}

// UpdateHost changes a host's ratios, reservations, maintenance and enabled
// flags. Lowering capacity below what is placed is allowed (nothing is
// moved) but stops new VMs landing there.
func (s *Store) UpdateHost(ctx context.Context, a Actor, id string, in HostSettings) (Host, error) {
	var h Host
	t := &Target{Type: "host", ID: id}
	err := s.change(ctx, a, "host.update", t, func(tx *gorm.DB) error {
		if err := in.validate(); err != nil {
			return err
		}
		res := tx.Model(&Host{}).Where("id = ?", id).Updates(map[string]any{
			"cpu_ratio": in.CPURatio, "memory_ratio": in.MemoryRatio, "disk_ratio": in.DiskRatio,
			"reserved_cores": in.ReservedCores, "reserved_memory_mib": in.ReservedMemoryMiB, "reserved_disk_gib": in.ReservedDiskGiB,
			"maintenance": in.Maintenance, "enabled": in.Enabled, "updated_at": now(),
		})
		if res.Error != nil {
			return fmt.Errorf("update host: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("host")
		}
		if err := tx.Where("id = ?", id).Take(&h).Error; err != nil {
			return fmt.Errorf("load host: %w", err)
		}
		t.Name = h.Name
		return nil
	})
	return h, err
}

// DeleteHost removes a host that holds no VMs.
func (s *Store) DeleteHost(ctx context.Context, a Actor, id string) error {
	t := &Target{Type: "host", ID: id}
	return s.change(ctx, a, "host.delete", t, func(tx *gorm.DB) error {
		// Writing the row first holds it against a concurrent placement,
		// which reserves with an UPDATE of the same row.
		res := tx.Model(&Host{}).Where("id = ?", id).Update("updated_at", now())
		if res.Error != nil {
			return fmt.Errorf("lock host: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("host")
		}
		var h Host
		if err := tx.Where("id = ?", id).Take(&h).Error; err != nil {
			return fmt.Errorf("load host: %w", err)
		}
		t.Name = h.Name
		var n int64
		if err := tx.Model(&VM{}).Where("host_id = ?", id).Count(&n).Error; err != nil {
			return fmt.Errorf("count vms on host: %w", err)
		}
		if n > 0 {
			return E(ErrConflict, "", fmt.Sprintf("%s holds %d %s; delete %s first", h.Name, n, plural(n, "VM", "VMs"), plural(n, "it", "them")))
		}
		if err := tx.Where("id = ?", id).Delete(&Host{}).Error; err != nil {
			return fmt.Errorf("delete host: %w", err)
		}
		return nil
	})
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// RecordHostFacts stores what discovery found and marks the host ready.
// The SSH host key is pinned on first use: a different key later is refused,
// since it means the host was replaced or someone is in the middle.
func (s *Store) RecordHostFacts(ctx context.Context, id string, f Facts, hostKey string) error {
	if f.Cores < 0 || f.MemoryMiB < 0 || f.DiskGiB < 0 || f.DiskFreeGiB < 0 {
		return E(ErrInvalid, "", "host facts cannot be negative")
	}
	hostKey = strings.TrimSpace(hostKey)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var h Host
		if err := tx.Where("id = ?", id).Take(&h).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("host")
			}
			return fmt.Errorf("load host: %w", err)
		}
		if hostKey == "" {
			hostKey = h.SSHHostKey
		}
		ts := now()
		res := tx.Model(&Host{}).Where("id = ? AND (ssh_host_key = '' OR ssh_host_key = ?)", id, hostKey).Updates(map[string]any{
			"cpu_model": clean(f.CPUModel), "cores": f.Cores, "memory_mib": f.MemoryMiB, "disk_gib": f.DiskGiB, "disk_free_gib": f.DiskFreeGiB,
			"ssh_host_key": hostKey, "state": HostReady, "last_error": "", "refreshed_at": ts, "updated_at": ts,
		})
		if res.Error != nil {
			return fmt.Errorf("record host facts: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return E(ErrConflict, "", "the host's SSH key differs from the one recorded; delete and re-register the host if it was replaced")
		}
		return nil
	})
}

// RecordHostError marks a host unusable until discovery succeeds again.
func (s *Store) RecordHostError(ctx context.Context, id, msg string) error {
	res := s.db.WithContext(ctx).Model(&Host{}).Where("id = ?", id).Updates(map[string]any{
		"state": HostError, "last_error": clean(msg), "updated_at": now(),
	})
	if res.Error != nil {
		return fmt.Errorf("record host error: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("host")
	}
	return nil
}

// PinHostKey records a host's SSH key on first contact, even when the rest
// of discovery failed; a different key than the one already recorded is
// refused.
func (s *Store) PinHostKey(ctx context.Context, id, hostKey string) error {
	hostKey = strings.TrimSpace(hostKey)
	if hostKey == "" {
		return nil
	}
	res := s.db.WithContext(ctx).Model(&Host{}).Where("id = ? AND (ssh_host_key = '' OR ssh_host_key = ?)", id, hostKey).
		Updates(map[string]any{"ssh_host_key": hostKey, "updated_at": now()})
	if res.Error != nil {
		return fmt.Errorf("pin host key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return E(ErrConflict, "", "the host's SSH key differs from the one recorded; delete and re-register the host if it was replaced")
	}
	return nil
}
