package inventory

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid classifies every error Validate returns.
var ErrInvalid = errors.New("invalid report")

// Limits a sane report stays within.
const (
	maxThreads   = 16384
	maxMemoryMiB = 64 << 20 // 64 TiB
	maxDiskBytes = 1 << 50  // 1 PiB per disk
	maxDisks     = 256
	maxNICs      = 256
	maxText      = 256
	maxSpeedMbps = 1_000_000
	maxMessage   = 4096
	maxSSHKeys   = 100
	maxSSHKey    = 8192 // bytes of one authorized_keys line
)

var (
	devName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// hostname is one lower-case DNS label, as machine names are.
	hostname = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// instanceID is safe as a file name: cloud-init keeps per-instance state
	// under /var/lib/cloud/instances/<instance-id>.
	instanceID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
)

// NormalizeMAC returns a 6-byte Ethernet MAC in lower-case colon form.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%w: mac %q is not an Ethernet address", ErrInvalid, s)
	}
	if hw.String() == "00:00:00:00:00:00" {
		return "", fmt.Errorf("%w: mac is all zeros", ErrInvalid)
	}
	return hw.String(), nil
}

// Validate checks a report as the region receives it: a token, a boot MAC,
// a known mode and status, and for commissioning an inventory whose sizes
// are sane and whose MACs are Ethernet addresses.
func Validate(r Report) error {
	if r.Token == "" {
		return fmt.Errorf("%w: token is empty", ErrInvalid)
	}
	if _, err := NormalizeMAC(r.MAC); err != nil {
		return err
	}
	switch r.Mode {
	case ModeCommission, ModeDeploy, ModeRelease:
	default:
		return fmt.Errorf("%w: unknown mode %q", ErrInvalid, r.Mode)
	}
	switch r.Status {
	case StatusOK, StatusFailed:
	default:
		return fmt.Errorf("%w: unknown status %q", ErrInvalid, r.Status)
	}
	if len(r.Message) > maxMessage {
		return fmt.Errorf("%w: message longer than %d bytes", ErrInvalid, maxMessage)
	}
	if len(r.Log) > MaxLogLines {
		return fmt.Errorf("%w: more than %d log lines", ErrInvalid, MaxLogLines)
	}
	for i, l := range r.Log {
		if len(l) > MaxLogLine || !utf8.ValidString(l) || strings.ContainsFunc(l, func(c rune) bool { return c < 0x20 && c != '\t' || c == 0x7f }) {
			return fmt.Errorf("%w: log line %d is longer than %d bytes or has control characters", ErrInvalid, i+1, MaxLogLine)
		}
	}
	if r.Mode == ModeCommission && r.Status == StatusOK {
		if r.Inventory == nil {
			return fmt.Errorf("%w: commissioning report without inventory", ErrInvalid)
		}
	}
	if r.Inventory != nil {
		if err := validateInventory(*r.Inventory); err != nil {
			return err
		}
	}
	if d := r.Deploy; d != nil {
		if !devName.MatchString(d.Disk) || d.BytesWritten < 0 || d.BytesWritten > maxDiskBytes {
			return fmt.Errorf("%w: deploy result disk %q, %d bytes", ErrInvalid, d.Disk, d.BytesWritten)
		}
		if d.SHA256 != "" && !sha256Hex.MatchString(d.SHA256) {
			return fmt.Errorf("%w: deploy result sha256 is not 64 hex digits", ErrInvalid)
		}
		if d.SeedPartition != "" && !devName.MatchString(d.SeedPartition) {
			return fmt.Errorf("%w: deploy result seed partition %q", ErrInvalid, d.SeedPartition)
		}
		if d.SSHHostKey != "" {
			if err := singleLine(d.SSHHostKey, maxSSHKey); err != nil {
				return fmt.Errorf("%w: deploy result ssh host key %v", ErrInvalid, err)
			}
		}
	}
	for _, w := range r.Wiped {
		if !devName.MatchString(w) {
			return fmt.Errorf("%w: wiped disk name %q", ErrInvalid, w)
		}
	}
	return nil
}

func validateInventory(inv Inventory) error {
	c := inv.CPU
	if c.Threads < 1 || c.Threads > maxThreads || c.Cores < 1 || c.Cores > c.Threads {
		return fmt.Errorf("%w: cpu cores %d, threads %d", ErrInvalid, c.Cores, c.Threads)
	}
	if len(c.Model) > maxText {
		return fmt.Errorf("%w: cpu model longer than %d bytes", ErrInvalid, maxText)
	}
	if inv.MemoryMiB < 1 || inv.MemoryMiB > maxMemoryMiB {
		return fmt.Errorf("%w: memory %d MiB", ErrInvalid, inv.MemoryMiB)
	}
	if len(inv.Disks) > maxDisks || len(inv.NICs) > maxNICs {
		return fmt.Errorf("%w: %d disks, %d NICs", ErrInvalid, len(inv.Disks), len(inv.NICs))
	}
	seen := map[string]bool{}
	for _, d := range inv.Disks {
		if !devName.MatchString(d.Name) || seen["disk "+d.Name] {
			return fmt.Errorf("%w: disk name %q", ErrInvalid, d.Name)
		}
		seen["disk "+d.Name] = true
		if d.SizeBytes < 1 || d.SizeBytes > maxDiskBytes {
			return fmt.Errorf("%w: disk %s size %d bytes", ErrInvalid, d.Name, d.SizeBytes)
		}
		if len(d.Model) > maxText || len(d.Serial) > maxText {
			return fmt.Errorf("%w: disk %s model or serial longer than %d bytes", ErrInvalid, d.Name, maxText)
		}
	}
	for _, n := range inv.NICs {
		if !devName.MatchString(n.Name) || seen["nic "+n.Name] {
			return fmt.Errorf("%w: nic name %q", ErrInvalid, n.Name)
		}
		seen["nic "+n.Name] = true
		if _, err := NormalizeMAC(n.MAC); err != nil {
			return fmt.Errorf("nic %s: %w", n.Name, err)
		}
		if n.SpeedMbps < 0 || n.SpeedMbps > maxSpeedMbps {
			return fmt.Errorf("%w: nic %s speed %d Mb/s", ErrInvalid, n.Name, n.SpeedMbps)
		}
	}
	if len(inv.BMC.Note) > maxText {
		return fmt.Errorf("%w: bmc note longer than %d bytes", ErrInvalid, maxText)
	}
	return nil
}

// ValidatePlan checks a deploy plan before the agent acts on it (and the
// region before it serves one).
func ValidatePlan(p DeployPlan) error {
	if !strings.HasPrefix(p.ImageURL, "http://") && !strings.HasPrefix(p.ImageURL, "https://") {
		return fmt.Errorf("%w: image url %q is not http(s)", ErrInvalid, p.ImageURL)
	}
	if !sha256Hex.MatchString(p.SHA256) {
		return fmt.Errorf("%w: sha256 is not 64 lower-case hex digits", ErrInvalid)
	}
	if !devName.MatchString(strings.TrimPrefix(p.Disk, "/dev/")) {
		return fmt.Errorf("%w: disk %q", ErrInvalid, p.Disk)
	}
	if p.InstanceID == "" {
		return fmt.Errorf("%w: instance id is empty", ErrInvalid)
	}
	if !instanceID.MatchString(p.InstanceID) {
		return fmt.Errorf("%w: instance id %q: want up to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", ErrInvalid, p.InstanceID)
	}
	if !hostname.MatchString(p.Hostname) {
		return fmt.Errorf("%w: hostname %q: want one DNS label of lower-case letters, digits and inner '-', up to 63 characters", ErrInvalid, p.Hostname)
	}
	if len(p.SSHKeys) > maxSSHKeys {
		return fmt.Errorf("%w: %d ssh keys, at most %d", ErrInvalid, len(p.SSHKeys), maxSSHKeys)
	}
	for i, k := range p.SSHKeys {
		if err := singleLine(k, maxSSHKey); err != nil {
			return fmt.Errorf("%w: ssh key %d %v", ErrInvalid, i+1, err)
		}
	}
	return nil
}

// singleLine checks that s is one non-blank line of printable text of at
// most limit bytes: an authorized_keys entry, never something that could
// add a second one.
func singleLine(s string, limit int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("is empty")
	case len(s) > limit:
		return fmt.Errorf("is longer than %d bytes", limit)
	case !utf8.ValidString(s):
		return errors.New("is not UTF-8")
	}
	for _, r := range s {
		if r != '\t' && !unicode.IsPrint(r) {
			return fmt.Errorf("is not a single line of text (character %U)", r)
		}
	}
	return nil
}
