package inventory_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

func TestCollect(t *testing.T) {
	tests := []struct {
		name string
		want inventory.Inventory
	}{
		{
			name: "vm",
			want: inventory.Inventory{
				CPU:       inventory.CPU{Model: "QEMU Virtual CPU version 2.5+", Cores: 2, Threads: 2},
				MemoryMiB: 512, // 4 online blocks of 128 MiB; the offline one and MemTotal do not count
				Disks:     []inventory.Disk{{Name: "vda", SizeBytes: 64 << 20, Serial: "DISK123", Rotational: true}},
				NICs:      []inventory.NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", Link: true}},
			},
		},
		{
			name: "server",
			want: inventory.Inventory{
				CPU:       inventory.CPU{Model: "Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz", Cores: 4, Threads: 8},
				MemoryMiB: 64236,
				Disks: []inventory.Disk{
					{Name: "nvme0n1", SizeBytes: 1875385008 * 512, Model: "Samsung SSD 970 EVO Plus 1TB", Serial: "S4EWNX0R123456K"},
					{Name: "sda", SizeBytes: 3907029168 * 512, Model: "ST2000NM0055-1V4", Serial: "ZC20ABCD", Rotational: true},
				},
				NICs: []inventory.NIC{
					{Name: "eno1", MAC: "0c:c4:7a:aa:bb:01", Link: true, SpeedMbps: 1000},
					{Name: "eno2", MAC: "0c:c4:7a:aa:bb:02"},
				},
				BMC: inventory.BMC{Present: true, Note: "IPMI device /dev/ipmi0 present (in-band; details not read)"},
			},
		},
		{
			name: "minimal",
			want: inventory.Inventory{
				CPU:       inventory.CPU{Model: "Virtual CPU", Cores: 1, Threads: 1},
				MemoryMiB: 992,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inventory.Collect(filepath.Join("testdata", tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Collect (-want +got):\n%s", diff)
			}
			r := inventory.Report{Token: "t", MAC: "52:54:00:12:34:56", Mode: inventory.ModeCommission, Status: inventory.StatusOK, Inventory: &got}
			if err := inventory.Validate(r); err != nil {
				t.Errorf("collected inventory does not validate: %v", err)
			}
		})
	}
}

func TestCollectNoCPUInfo(t *testing.T) {
	if _, err := inventory.Collect(t.TempDir()); err == nil {
		t.Fatal("Collect on an empty tree: no error")
	}
}

func TestParseCPUInfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want inventory.CPU
	}{
		{"empty", "", inventory.CPU{}},
		{"no topology", "processor : 0\nmodel name : A\n\nprocessor : 1\nmodel name : A\n", inventory.CPU{Model: "A", Cores: 2, Threads: 2}},
		{"smt", "processor:0\ncore id:0\n\nprocessor:1\ncore id:0\n\n", inventory.CPU{Cores: 1, Threads: 2}},
		{"two sockets same core ids", "processor:0\nphysical id:0\ncore id:0\n\nprocessor:1\nphysical id:1\ncore id:0\n", inventory.CPU{Cores: 2, Threads: 2}},
		{"first model wins", "processor:0\nmodel name:A\n\nprocessor:1\nmodel name:B\n", inventory.CPU{Model: "A", Cores: 2, Threads: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, inventory.ParseCPUInfo(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMemInfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"normal", "MemTotal:  2048000 kB\nMemFree: 1 kB\n", 2000, false},
		{"not first", "Foo: 1 kB\nMemTotal: 1024 kB\n", 1, false},
		{"missing", "MemFree: 1 kB\n", 0, true},
		{"garbage", "MemTotal: lots kB\n", 0, true},
		{"zero", "MemTotal: 0 kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inventory.ParseMemInfo(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseMemInfo = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseVPDSerial(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"padded", []byte("\x00\x80\x00\x0a  SER123  "), "SER123"},
		{"short page", []byte("\x00\x80"), ""},
		{"wrong page", []byte("\x00\x83\x00\x03abc"), ""},
		{"length beyond data", []byte("\x00\x80\x00\x40XY"), "XY"},
		{"nul padded", []byte("\x00\x80\x00\x05AB\x00\x00\x00"), "AB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inventory.ParseVPDSerial(tt.in); got != tt.want {
				t.Errorf("ParseVPDSerial = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSkipDisk(t *testing.T) {
	for name, want := range map[string]bool{
		"sda": false, "vda": false, "nvme0n1": false, "xvda": false, "mmcblk0": false,
		"loop0": true, "ram1": true, "sr0": true, "zram0": true, "fd0": true, "dm-0": true, "md127": true, "nbd3": true,
	} {
		if got := inventory.SkipDisk(name); got != want {
			t.Errorf("SkipDisk(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() inventory.Report {
		return inventory.Report{
			Token: "tok", MAC: "52:54:00:12:34:56", Mode: inventory.ModeCommission, Status: inventory.StatusOK,
			Inventory: &inventory.Inventory{
				CPU:       inventory.CPU{Model: "x", Cores: 1, Threads: 2},
				MemoryMiB: 512,
				Disks:     []inventory.Disk{{Name: "vda", SizeBytes: 1 << 30}},
				NICs:      []inventory.NIC{{Name: "eth0", MAC: "52:54:00:12:34:56", SpeedMbps: 1000}},
			},
		}
	}
	tests := []struct {
		name    string
		edit    func(*inventory.Report)
		wantErr string // "" when valid
	}{
		{"good", func(*inventory.Report) {}, ""},
		{"deploy without inventory", func(r *inventory.Report) {
			r.Mode, r.Inventory = inventory.ModeDeploy, nil
			r.Deploy = &inventory.DeployResult{Disk: "vda", BytesWritten: 10, SHA256: strings.Repeat("ab", 32)}
		}, ""},
		{"failed commissioning without inventory", func(r *inventory.Report) { r.Status, r.Inventory = inventory.StatusFailed, nil }, ""},
		{"no token", func(r *inventory.Report) { r.Token = "" }, "token"},
		{"bad mac", func(r *inventory.Report) { r.MAC = "52:54:00:12:34" }, "mac"},
		{"eui64 mac", func(r *inventory.Report) { r.MAC = "02:00:5e:10:00:00:00:01" }, "mac"},
		{"zero mac", func(r *inventory.Report) { r.MAC = "00:00:00:00:00:00" }, "zeros"},
		{"unknown mode", func(r *inventory.Report) { r.Mode = "rescue" }, "mode"},
		{"unknown status", func(r *inventory.Report) { r.Status = "" }, "status"},
		{"commission without inventory", func(r *inventory.Report) { r.Inventory = nil }, "without inventory"},
		{"no threads", func(r *inventory.Report) { r.Inventory.CPU = inventory.CPU{} }, "cpu"},
		{"more cores than threads", func(r *inventory.Report) { r.Inventory.CPU.Cores = 4 }, "cpu"},
		{"no memory", func(r *inventory.Report) { r.Inventory.MemoryMiB = 0 }, "memory"},
		{"absurd memory", func(r *inventory.Report) { r.Inventory.MemoryMiB = 1 << 40 }, "memory"},
		{"empty disk", func(r *inventory.Report) { r.Inventory.Disks[0].SizeBytes = 0 }, "size"},
		{"negative disk", func(r *inventory.Report) { r.Inventory.Disks[0].SizeBytes = -1 }, "size"},
		{"disk name with slash", func(r *inventory.Report) { r.Inventory.Disks[0].Name = "../sda" }, "disk name"},
		{"duplicate disk", func(r *inventory.Report) { r.Inventory.Disks = append(r.Inventory.Disks, r.Inventory.Disks[0]) }, "disk name"},
		{"long serial", func(r *inventory.Report) { r.Inventory.Disks[0].Serial = strings.Repeat("s", 300) }, "serial"},
		{"nic bad mac", func(r *inventory.Report) { r.Inventory.NICs[0].MAC = "zz:54:00:12:34:56" }, "mac"},
		{"nic negative speed", func(r *inventory.Report) { r.Inventory.NICs[0].SpeedMbps = -1 }, "speed"},
		{"deploy bad sha", func(r *inventory.Report) { r.Deploy = &inventory.DeployResult{Disk: "vda", SHA256: "abc"} }, "sha256"},
		{"deploy with seed and host key", func(r *inventory.Report) {
			r.Mode, r.Inventory = inventory.ModeDeploy, nil
			r.Deploy = &inventory.DeployResult{Disk: "nvme0n1", SeedPartition: "nvme0n1p2",
				SSHHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vdCBhIHJlYWwga2V5IGJ1dCB3ZWxsIGZvcm1lZA"}
		}, ""},
		{"deploy bad seed partition", func(r *inventory.Report) {
			r.Deploy = &inventory.DeployResult{Disk: "vda", SeedPartition: "../vda1"}
		}, "seed partition"},
		{"deploy host key of two lines", func(r *inventory.Report) {
			r.Deploy = &inventory.DeployResult{Disk: "vda", SSHHostKey: "ssh-ed25519 AAAA\nssh-ed25519 BBBB"}
		}, "ssh host key"},
		{"wiped bad name", func(r *inventory.Report) { r.Wiped = []string{"/dev/sda"} }, "wiped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.edit(&r)
			err := inventory.Validate(r)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidatePlan(t *testing.T) {
	good := func() inventory.DeployPlan {
		return inventory.DeployPlan{ImageURL: "http://10.0.0.1/img.raw.gz", SHA256: strings.Repeat("0f", 32), Disk: "sda",
			InstanceID: "01jd4r8k2m-1763712000", Hostname: "node-1",
			SSHKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vdCBhIHJlYWwga2V5IGJ1dCB3ZWxsIGZvcm1lZA staff@example (José)"}}
	}
	tests := []struct {
		name    string
		edit    func(*inventory.DeployPlan)
		wantErr string // "" when valid
	}{
		{"good", func(*inventory.DeployPlan) {}, ""},
		{"dev path", func(p *inventory.DeployPlan) { p.ImageURL, p.Disk = "https://r/img", "/dev/nvme0n1" }, ""},
		{"no ssh keys", func(p *inventory.DeployPlan) { p.SSHKeys = nil }, ""},
		{"uuid instance id", func(p *inventory.DeployPlan) { p.InstanceID = "iid-6f1c2a4e-9b7d-4c1e-8f00-0123456789ab" }, ""},
		{"ftp", func(p *inventory.DeployPlan) { p.ImageURL = "ftp://r/img" }, "image url"},
		{"upper-case sum", func(p *inventory.DeployPlan) { p.SHA256 = strings.ToUpper(p.SHA256) }, "sha256"},
		{"no disk", func(p *inventory.DeployPlan) { p.Disk = "" }, "disk"},
		{"traversal", func(p *inventory.DeployPlan) { p.Disk = "/dev/../etc/passwd" }, "disk"},
		{"no instance id", func(p *inventory.DeployPlan) { p.InstanceID = "" }, "instance id is empty"},
		{"instance id with slash", func(p *inventory.DeployPlan) { p.InstanceID = "a/../b" }, "instance id"},
		{"instance id with newline", func(p *inventory.DeployPlan) { p.InstanceID = "a\nlocal-hostname: x" }, "instance id"},
		{"long instance id", func(p *inventory.DeployPlan) { p.InstanceID = strings.Repeat("i", 129) }, "instance id"},
		{"no hostname", func(p *inventory.DeployPlan) { p.Hostname = "" }, "hostname"},
		{"upper-case hostname", func(p *inventory.DeployPlan) { p.Hostname = "Node1" }, "hostname"},
		{"dotted hostname", func(p *inventory.DeployPlan) { p.Hostname = "node1.example.com" }, "hostname"},
		{"hostname ending in dash", func(p *inventory.DeployPlan) { p.Hostname = "node-" }, "hostname"},
		{"hostname of 64 characters", func(p *inventory.DeployPlan) { p.Hostname = strings.Repeat("n", 64) }, "hostname"},
		{"hostname with quote", func(p *inventory.DeployPlan) { p.Hostname = `n"1` }, "hostname"},
		{"ssh key with newline", func(p *inventory.DeployPlan) {
			p.SSHKeys = append(p.SSHKeys, "ssh-ed25519 AAAA a\nssh-ed25519 BBBB intruder")
		}, "ssh key 2 is not a single line"},
		{"ssh key with carriage return", func(p *inventory.DeployPlan) { p.SSHKeys[0] += "\r" }, "ssh key 1 is not a single line"},
		{"ssh key with line separator", func(p *inventory.DeployPlan) { p.SSHKeys[0] += "\u2028x" }, "ssh key 1 is not a single line"},
		{"blank ssh key", func(p *inventory.DeployPlan) { p.SSHKeys = []string{"  "} }, "ssh key 1 is empty"},
		{"ssh key not utf-8", func(p *inventory.DeployPlan) { p.SSHKeys[0] += "\xff" }, "not UTF-8"},
		{"huge ssh key", func(p *inventory.DeployPlan) { p.SSHKeys[0] = "ssh-rsa " + strings.Repeat("A", 9000) }, "longer than"},
		{"too many ssh keys", func(p *inventory.DeployPlan) {
			p.SSHKeys = make([]string, 101)
			for i := range p.SSHKeys {
				p.SSHKeys[i] = "ssh-ed25519 AAAA"
			}
		}, "ssh keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good()
			tt.edit(&p)
			err := inventory.ValidatePlan(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidatePlan: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidatePlan = %v, want ErrInvalid mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeMAC(t *testing.T) {
	got, err := inventory.NormalizeMAC("52-54-00-AB-CD-EF")
	if err != nil || got != "52:54:00:ab:cd:ef" {
		t.Fatalf("NormalizeMAC = %q, %v", got, err)
	}
}

func TestValidateLog(t *testing.T) {
	base := inventory.Report{Token: "T", MAC: "52:54:00:12:34:56", Mode: inventory.ModeRelease, Status: inventory.StatusOK}
	ok := base
	ok.Log = []string{"time=… level=INFO msg=\"quick wipe done\"\tdisk=vda", ""}
	if err := inventory.Validate(ok); err != nil {
		t.Errorf("a plain log: %v", err)
	}
	for name, log := range map[string][]string{
		"too many lines":   make([]string, inventory.MaxLogLines+1),
		"too long":         {strings.Repeat("x", inventory.MaxLogLine+1)},
		"escape sequences": {"\x1b[2Jcleared"},
		"newline inside":   {"one\ntwo"},
		"invalid utf-8":    {"\xff\xfe"},
	} {
		r := base
		r.Log = log
		if err := inventory.Validate(r); !errors.Is(err, inventory.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
