package hypervisor

import (
	"encoding/xml"
	"fmt"
	"net"
	"regexp"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Domain types: KVM where the host's KVM really runs guests (see ProbeKVM),
// else QEMU's TCG emulation.
const (
	TypeKVM  = "kvm"
	TypeQEMU = "qemu"
)

// DomainSpec is what a VM's libvirt domain is made of.
type DomainSpec struct {
	Name      string // libvirt domain name
	UUID      string // stable across redefinitions
	VCPUs     int
	MemoryMiB int64
	Type      string // TypeKVM or TypeQEMU
	DiskPath  string // qcow2 file on the host (EnsureDisk's result); empty for no disk
	Bridge    string // host bridge for the NIC; empty for no NIC
	MAC       string // the NIC's MAC address
	// SMBIOSSerial becomes the SMBIOS system serial number, which
	// cloud-init reads as its NoCloud seed, e.g.
	// "ds=nocloud-net;s=http://10.0.0.1:8081/<token>/".
	SMBIOSSerial string
	// Kernel, Initrd and Cmdline, paths on the host, boot a kernel directly
	// instead of from the disk.
	Kernel, Initrd, Cmdline string
	// ConsoleLog, a path on the host, records the serial console.
	ConsoleLog string
}

// namePattern keeps domain names to what is safe in file names and logs.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate reports the first thing wrong with the spec.
func (s DomainSpec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("domain spec: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case !namePattern.MatchString(s.Name):
		return bad("name %q: use 1-63 letters, digits, '.', '_' or '-'", s.Name)
	case s.VCPUs < 1:
		return bad("vcpus %d: must be at least 1", s.VCPUs)
	case s.MemoryMiB < 16:
		return bad("memory %d MiB: must be at least 16", s.MemoryMiB)
	case s.Type != TypeKVM && s.Type != TypeQEMU:
		return bad("type %q: want %q or %q", s.Type, TypeKVM, TypeQEMU)
	case (s.Initrd != "" || s.Cmdline != "") && s.Kernel == "":
		return bad("initrd or cmdline without a kernel")
	case s.Bridge != "" && s.MAC == "":
		return bad("bridge %q without a MAC address", s.Bridge)
	}
	if _, err := uuid.Parse(s.UUID); err != nil {
		return bad("uuid %q: %v", s.UUID, err)
	}
	// encoding/xml silently replaces what XML cannot carry, so libvirt
	// would be handed another path than the one asked for.
	for _, f := range []struct{ what, v string }{
		{"disk path", s.DiskPath}, {"bridge", s.Bridge}, {"smbios serial", s.SMBIOSSerial},
		{"kernel", s.Kernel}, {"initrd", s.Initrd}, {"cmdline", s.Cmdline}, {"console log", s.ConsoleLog},
	} {
		if !xmlText(f.v) {
			return bad("%s %q: not valid XML text", f.what, f.v)
		}
	}
	if s.MAC != "" {
		hw, err := net.ParseMAC(s.MAC)
		if err != nil || len(hw) != 6 {
			return bad("mac %q: not a 48-bit MAC address", s.MAC)
		}
		if hw[0]&1 != 0 {
			return bad("mac %q: multicast", s.MAC)
		}
	}
	return nil
}

// xmlText reports whether s is UTF-8 made only of characters XML 1.0 allows.
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t', r == '\n', r == '\r':
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}

// diskTarget is the guest's disk device; guestAgentChannel the name of
// the virtio channel qemu-guest-agent listens on.
const (
	diskTarget        = "vda"
	guestAgentChannel = "org.qemu.guest_agent.0"
)

// DomainXML renders the libvirt domain definition of a spec.
func DomainXML(s DomainSpec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	d := xDomain{
		Type:   s.Type,
		Name:   s.Name,
		UUID:   uuid.MustParse(s.UUID).String(),
		Memory: xSize{Unit: "MiB", Value: s.MemoryMiB},
		VCPU:   s.VCPUs,
		OS: xOS{
			Type:    xOSType{Arch: "x86_64", Machine: "pc", Value: "hvm"},
			Kernel:  s.Kernel,
			Initrd:  s.Initrd,
			Cmdline: s.Cmdline,
		},
		Features:   xFeatures{ACPI: &struct{}{}},
		Clock:      xClock{Offset: "utc"},
		OnPoweroff: "destroy", // a guest poweroff ends the domain
		OnReboot:   "restart",
		OnCrash:    "destroy",
	}
	if s.Kernel == "" {
		d.OS.Boot = &xBoot{Dev: "hd"}
	}
	if s.Type == TypeKVM {
		d.CPU = &xCPU{Mode: "host-passthrough"}
	}
	if s.SMBIOSSerial != "" {
		d.OS.SMBIOS = &xSMBIOS{Mode: "sysinfo"}
		d.Sysinfo = &xSysinfo{Type: "smbios", Entries: []xEntry{{Name: "serial", Value: s.SMBIOSSerial}}}
	}
	dev := &d.Devices
	if s.DiskPath != "" {
		dev.Disks = append(dev.Disks, xDisk{
			Type:   "file",
			Device: "disk",
			Driver: xDriver{Name: "qemu", Type: "qcow2", Discard: "unmap"},
			Source: xSource{File: s.DiskPath},
			Target: xTarget{Dev: diskTarget, Bus: "virtio"},
		})
	}
	if s.Bridge != "" {
		hw, _ := net.ParseMAC(s.MAC) // validated above
		dev.Interfaces = append(dev.Interfaces, xInterface{
			Type:   "bridge",
			MAC:    xMAC{Address: hw.String()},
			Source: xIfSource{Bridge: s.Bridge},
			Model:  xModel{Type: "virtio"},
		})
	}
	serial := xChar{Type: "pty", Target: &xCharTarget{Port: "0"}}
	if s.ConsoleLog != "" {
		serial.Log = &xLog{File: s.ConsoleLog, Append: "off"}
	}
	dev.Serials = []xChar{serial}
	dev.Consoles = []xChar{{Type: "pty", Target: &xCharTarget{Type: "serial", Port: "0"}}}
	// The guest agent's channel: a guest running qemu-guest-agent lets
	// snapshots freeze its file systems (libvirt picks the socket's path).
	dev.Channels = []xChannel{{Type: "unix", Target: xChannelTarget{Type: "virtio", Name: guestAgentChannel}}}
	// Guests generate SSH host keys on first boot: give them entropy.
	dev.RNG = &xRNG{Model: "virtio", Backend: xRNGBackend{Model: "random", Value: "/dev/urandom"}}
	dev.MemBalloon = &xModel{Model: "virtio"}

	out, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render domain xml: %w", err)
	}
	return append(out, '\n'), nil
}

// The x* types mirror the subset of libvirt's domain XML that we write
// (https://libvirt.org/formatdomain.html).
type xDomain struct {
	XMLName    xml.Name  `xml:"domain"`
	Type       string    `xml:"type,attr"`
	Name       string    `xml:"name"`
	UUID       string    `xml:"uuid"`
	Memory     xSize     `xml:"memory"`
	VCPU       int       `xml:"vcpu"`
	Sysinfo    *xSysinfo `xml:"sysinfo"`
	OS         xOS       `xml:"os"`
	Features   xFeatures `xml:"features"`
	CPU        *xCPU     `xml:"cpu"`
	Clock      xClock    `xml:"clock"`
	OnPoweroff string    `xml:"on_poweroff"`
	OnReboot   string    `xml:"on_reboot"`
	OnCrash    string    `xml:"on_crash"`
	Devices    xDevices  `xml:"devices"`
}

type xSize struct {
	Unit  string `xml:"unit,attr"`
	Value int64  `xml:",chardata"`
}

type xSysinfo struct {
	Type    string   `xml:"type,attr"`
	Entries []xEntry `xml:"system>entry"`
}

type xEntry struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type xOS struct {
	Type    xOSType  `xml:"type"`
	Kernel  string   `xml:"kernel,omitempty"`
	Initrd  string   `xml:"initrd,omitempty"`
	Cmdline string   `xml:"cmdline,omitempty"`
	Boot    *xBoot   `xml:"boot"`
	SMBIOS  *xSMBIOS `xml:"smbios"`
}

type xOSType struct {
	Arch    string `xml:"arch,attr"`
	Machine string `xml:"machine,attr"`
	Value   string `xml:",chardata"`
}

type xBoot struct {
	Dev string `xml:"dev,attr"`
}

type xSMBIOS struct {
	Mode string `xml:"mode,attr"`
}

type xFeatures struct {
	ACPI *struct{} `xml:"acpi"`
}

type xCPU struct {
	Mode string `xml:"mode,attr"`
}

type xClock struct {
	Offset string `xml:"offset,attr"`
}

type xDevices struct {
	Disks      []xDisk      `xml:"disk"`
	Interfaces []xInterface `xml:"interface"`
	Serials    []xChar      `xml:"serial"`
	Consoles   []xChar      `xml:"console"`
	Channels   []xChannel   `xml:"channel"`
	RNG        *xRNG        `xml:"rng"`
	MemBalloon *xModel      `xml:"memballoon"`
}

type xDisk struct {
	Type   string  `xml:"type,attr"`
	Device string  `xml:"device,attr"`
	Driver xDriver `xml:"driver"`
	Source xSource `xml:"source"`
	Target xTarget `xml:"target"`
}

type xDriver struct {
	Name    string `xml:"name,attr"`
	Type    string `xml:"type,attr"`
	Discard string `xml:"discard,attr,omitempty"`
}

type xSource struct {
	File string `xml:"file,attr"`
}

type xTarget struct {
	Dev string `xml:"dev,attr"`
	Bus string `xml:"bus,attr"`
}

type xInterface struct {
	Type   string    `xml:"type,attr"`
	MAC    xMAC      `xml:"mac"`
	Source xIfSource `xml:"source"`
	Model  xModel    `xml:"model"`
}

type xMAC struct {
	Address string `xml:"address,attr"`
}

type xIfSource struct {
	Bridge string `xml:"bridge,attr"`
}

type xModel struct {
	Type  string `xml:"type,attr,omitempty"`
	Model string `xml:"model,attr,omitempty"`
}

type xChannel struct {
	Type   string         `xml:"type,attr"`
	Target xChannelTarget `xml:"target"`
}

type xChannelTarget struct {
	Type string `xml:"type,attr"`
	Name string `xml:"name,attr"`
}

type xChar struct {
	Type   string       `xml:"type,attr"`
	Target *xCharTarget `xml:"target"`
	Log    *xLog        `xml:"log"`
}

type xCharTarget struct {
	Type string `xml:"type,attr,omitempty"`
	Port string `xml:"port,attr"`
}

type xLog struct {
	File   string `xml:"file,attr"`
	Append string `xml:"append,attr"`
}

type xRNG struct {
	Model   string      `xml:"model,attr"`
	Backend xRNGBackend `xml:"backend"`
}

type xRNGBackend struct {
	Model string `xml:"model,attr"`
	Value string `xml:",chardata"`
}
