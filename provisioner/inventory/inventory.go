// Package inventory is the commissioning agent's report format: the types the
// agent sends and the region's agent API receives, Collect to read them from
// a machine's /proc and /sys, and Validate for the region to check them.
package inventory

// Modes of the agent, as given by fibrix.mode= on the kernel command line.
const (
	ModeCommission = "commission"
	ModeDeploy     = "deploy"
	ModeRelease    = "release"
)

// Statuses of a report.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)

// API paths the agent calls on the region, relative to fibrix.url.
const (
	ReportPath = "/api/agent/v1/report"
	DeployPath = "/api/agent/v1/deploy"
)

// Report is the body of POST /api/agent/v1/report. Inventory is set when
// commissioning; Deploy or Wiped tell what a deploy or a release did.
type Report struct {
	Token     string        `json:"token"`
	MAC       string        `json:"mac"`
	Mode      string        `json:"mode"`
	Status    string        `json:"status"`
	Message   string        `json:"message,omitempty"`
	Inventory *Inventory    `json:"inventory,omitempty"`
	Deploy    *DeployResult `json:"deploy,omitempty"`
	// Wiped lists the disks a release quick-wiped (empty when no wipe was asked).
	Wiped []string `json:"wiped,omitempty"`
	// Log is the agent's last log lines, oldest first, for the timeline.
	Log []string `json:"log,omitempty"`
}

// Bounds of a report's log tail.
const (
	MaxLogLines = 40
	MaxLogLine  = 1000
)

// Inventory is what commissioning found on the machine.
type Inventory struct {
	CPU       CPU    `json:"cpu"`
	MemoryMiB int64  `json:"memory_mib"`
	Disks     []Disk `json:"disks"`
	NICs      []NIC  `json:"nics"`
	BMC       BMC    `json:"bmc"`
}

// CPU sums up the processors: Cores are physical cores over all sockets,
// Threads the logical CPUs the kernel sees.
type CPU struct {
	Model   string `json:"model"`
	Cores   int    `json:"cores"`
	Threads int    `json:"threads"`
}

// Disk is one whole block device (partitions, loop, ram and optical drives
// are left out).
type Disk struct {
	Name       string `json:"name"`
	SizeBytes  int64  `json:"size_bytes"`
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
	Rotational bool   `json:"rotational"`
}

// NIC is one physical network interface. SpeedMbps is 0 when unknown.
type NIC struct {
	Name      string `json:"name"`
	MAC       string `json:"mac"`
	Link      bool   `json:"link"`
	SpeedMbps int    `json:"speed_mbps"`
}

// BMC tells whether the host sees a management controller (an IPMI device
// node); the agent has no ipmitool, so Note says what was seen.
type BMC struct {
	Present bool   `json:"present"`
	Note    string `json:"note,omitempty"`
}

// DeployPlan is the answer to GET /api/agent/v1/deploy?token=…: which image
// to write to which disk, and the cloud-init seed to leave on it. The image
// is raw or gzip-compressed raw (qcow2 is not supported) with a partition
// table and an ext4 root filesystem; SHA256 is over the bytes as served, so
// over the compressed file for a gzip image.
type DeployPlan struct {
	ImageURL string `json:"image_url"`
	SHA256   string `json:"sha256"`
	Disk     string `json:"disk"`
	// InstanceID is cloud-init's instance-id; it changes with every deploy,
	// so cloud-init runs its first-boot modules again.
	InstanceID string `json:"instance_id"`
	// Hostname is the machine's name.
	Hostname string `json:"hostname"`
	// SSHKeys are the public keys (authorized_keys lines) of the image's
	// default user.
	SSHKeys []string `json:"ssh_keys"`
}

// DeployResult is what a deploy wrote.
type DeployResult struct {
	Disk         string `json:"disk"`
	BytesWritten int64  `json:"bytes_written"`
	SHA256       string `json:"sha256"`
	// SeedPartition is the partition the cloud-init seed was written to
	// (e.g. vda1).
	SeedPartition string `json:"seed_partition,omitempty"`
	// SSHHostKey is the public half (authorized_keys format, no comment) of
	// the ed25519 host key the agent generated and put in the seed: the key
	// the deployed system's sshd will present.
	SSHHostKey string `json:"ssh_host_key,omitempty"`
}
