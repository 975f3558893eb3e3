package portal

import (
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// JSON shapes of hosts and subnets, for staff.

type ratiosJSON struct {
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memory"`
	Disk   float64 `json:"disk"`
}

type reservedJSON struct {
	Cores     int64 `json:"cores"`
	MemoryMiB int64 `json:"memory_mib"`
	DiskGiB   int64 `json:"disk_gib"`
}

// figureJSON is one resource of a host: cores/vCPUs, MiB or GiB.
type figureJSON struct {
	Physical      int64   `json:"physical"`
	Overcommitted int64   `json:"overcommitted"`
	Reserved      int64   `json:"reserved"`
	Allocated     int64   `json:"allocated"`
	Free          int64   `json:"free"`
	Ratio         float64 `json:"ratio"`
}

type capacityJSON struct {
	CPU    figureJSON `json:"cpu"`
	Memory figureJSON `json:"memory"`
	Disk   figureJSON `json:"disk"`
}

type hostJSON struct {
	ID                    string       `json:"id"`
	Name                  string       `json:"name"`
	URI                   string       `json:"uri"`
	State                 string       `json:"state"`
	LastError             string       `json:"last_error"`
	Enabled               bool         `json:"enabled"`
	Maintenance           bool         `json:"maintenance"`
	Ratios                ratiosJSON   `json:"ratios"`
	Reserved              reservedJSON `json:"reserved"`
	StoragePool           string       `json:"storage_pool"`
	Bridge                string       `json:"bridge"`
	CPUModel              string       `json:"cpu_model"`
	SSHHostKeyFingerprint string       `json:"ssh_host_key_fingerprint"`
	RefreshedAt           *time.Time   `json:"refreshed_at"`
	VMCount               int64        `json:"vm_count"`
	Capacity              capacityJSON `json:"capacity"`
}

func toFigureJSON(f capacity.Figure) figureJSON {
	return figureJSON{Physical: f.Physical, Overcommitted: f.Capacity, Reserved: f.Reserved, Allocated: f.Allocated, Free: f.Free, Ratio: f.Ratio}
}

func toHostJSON(h store.HostSummary) hostJSON {
	return hostJSON{ID: h.ID, Name: h.Name, URI: h.URI, State: h.State, LastError: h.LastError, Enabled: h.Enabled,
		Maintenance: h.Maintenance, Ratios: ratiosJSON{CPU: h.CPURatio, Memory: h.MemoryRatio, Disk: h.DiskRatio},
		Reserved:    reservedJSON{Cores: h.ReservedCores, MemoryMiB: h.ReservedMemoryMiB, DiskGiB: h.ReservedDiskGiB},
		StoragePool: h.StoragePool, Bridge: h.Bridge, CPUModel: h.CPUModel, SSHHostKeyFingerprint: hostKeyFingerprint(h.SSHHostKey),
		RefreshedAt: utcPtr(h.RefreshedAt), VMCount: h.VMs,
		Capacity: capacityJSON{CPU: toFigureJSON(h.Figures.CPU), Memory: toFigureJSON(h.Figures.Memory), Disk: toFigureJSON(h.Figures.Disk)}}
}

// hostKeyFingerprint is the SHA256 fingerprint of a pinned SSH host key,
// the form ssh-keyscan | ssh-keygen -lf - prints, so staff can compare it
// with the host's console; "" while none is pinned.
func hostKeyFingerprint(key string) string {
	key = strings.TrimSpace(key)
	if key == "" {
		return ""
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		// known_hosts lines carry the host name first.
		if _, _, pk2, _, _, err2 := ssh.ParseKnownHosts([]byte(key)); err2 == nil {
			return ssh.FingerprintSHA256(pk2)
		}
		return "unreadable key"
	}
	return ssh.FingerprintSHA256(pk)
}

// hostRequest registers a host; zero ratios take the defaults.
type hostRequest struct {
	Name              string  `json:"name"`
	URI               string  `json:"uri"`
	CPURatio          float64 `json:"cpu_ratio"`
	MemoryRatio       float64 `json:"memory_ratio"`
	DiskRatio         float64 `json:"disk_ratio"`
	ReservedCores     int64   `json:"reserved_cores"`
	ReservedMemoryMiB int64   `json:"reserved_memory_mib"`
	ReservedDiskGiB   int64   `json:"reserved_disk_gib"`
	StoragePool       string  `json:"storage_pool"`
	Bridge            string  `json:"bridge"`
}

// hostPatch changes some of a host's settings; absent fields stay.
type hostPatch struct {
	CPURatio          *float64 `json:"cpu_ratio"`
	MemoryRatio       *float64 `json:"memory_ratio"`
	DiskRatio         *float64 `json:"disk_ratio"`
	ReservedCores     *int64   `json:"reserved_cores"`
	ReservedMemoryMiB *int64   `json:"reserved_memory_mib"`
	ReservedDiskGiB   *int64   `json:"reserved_disk_gib"`
	Maintenance       *bool    `json:"maintenance"`
	Enabled           *bool    `json:"enabled"`
}

// hostSettings returns the settings of h with the patch applied.
func (p hostPatch) apply(h store.Host) store.HostSettings {
	in := store.HostSettings{CPURatio: h.CPURatio, MemoryRatio: h.MemoryRatio, DiskRatio: h.DiskRatio,
		ReservedCores: h.ReservedCores, ReservedMemoryMiB: h.ReservedMemoryMiB, ReservedDiskGiB: h.ReservedDiskGiB,
		Maintenance: h.Maintenance, Enabled: h.Enabled}
	set := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	setInt := func(dst *int64, src *int64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&in.CPURatio, p.CPURatio)
	set(&in.MemoryRatio, p.MemoryRatio)
	set(&in.DiskRatio, p.DiskRatio)
	setInt(&in.ReservedCores, p.ReservedCores)
	setInt(&in.ReservedMemoryMiB, p.ReservedMemoryMiB)
	setInt(&in.ReservedDiskGiB, p.ReservedDiskGiB)
	if p.Maintenance != nil {
		in.Maintenance = *p.Maintenance
	}
	if p.Enabled != nil {
		in.Enabled = *p.Enabled
	}
	return in
}

type subnetJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CIDR       string    `json:"cidr"`
	Gateway    string    `json:"gateway"`
	DNSServers []string  `json:"dns_servers"`
	RangeStart string    `json:"range_start"`
	RangeEnd   string    `json:"range_end"`
	Size       int64     `json:"size"`
	Used       int64     `json:"used"`
	Free       int64     `json:"free"`
	CreatedAt  time.Time `json:"created_at"`
}

func splitList(s string) []string {
	out := []string{}
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func toSubnetJSON(sn store.SubnetSummary) subnetJSON {
	return subnetJSON{ID: sn.ID, Name: sn.Name, CIDR: sn.CIDR, Gateway: sn.Gateway, DNSServers: splitList(sn.DNSServers),
		RangeStart: sn.RangeStart, RangeEnd: sn.RangeEnd, Size: sn.Size, Used: sn.Used, Free: sn.Free, CreatedAt: utc(sn.CreatedAt)}
}

type subnetRequest struct {
	Name       string   `json:"name"`
	CIDR       string   `json:"cidr"`
	Gateway    string   `json:"gateway"`
	DNSServers []string `json:"dns_servers"`
	RangeStart string   `json:"range_start"`
	RangeEnd   string   `json:"range_end"`
}
