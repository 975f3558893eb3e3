package hypervisor

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestDomainXMLGolden(t *testing.T) {
	tests := []struct {
		name string
		spec DomainSpec
	}{
		{
			name: "tcg",
			spec: DomainSpec{
				Name:         "vm-7f3a",
				UUID:         "0190d5e2-7b1c-7c3e-9a4b-3f2d1e0c9b8a",
				VCPUs:        1,
				MemoryMiB:    512,
				Type:         TypeQEMU,
				DiskPath:     "/var/lib/fibrix/pool/vm-7f3a.qcow2",
				Bridge:       "br0",
				MAC:          "52:54:00:AB:CD:EF",
				SMBIOSSerial: "ds=nocloud-net;s=http://10.0.0.1:8081/tok3n/",
			},
		},
		{
			name: "kvm",
			spec: DomainSpec{
				Name:         "web-1",
				UUID:         "0190D5E27B1C7C3E9A4B3F2D1E0C9B8B",
				VCPUs:        4,
				MemoryMiB:    8192,
				Type:         TypeKVM,
				DiskPath:     "/srv/pool/web-1.qcow2",
				Bridge:       "br-vms",
				MAC:          "52:54:00:00:00:01",
				SMBIOSSerial: `ds=nocloud-net;s=http://10.0.0.1:8081/a&b<c>"d'/`,
				ConsoleLog:   "/var/log/fibrix/web-1.console.log",
			},
		},
		{
			name: "kernel-boot",
			spec: DomainSpec{
				Name:      "probe",
				UUID:      "0190d5e2-7b1c-7c3e-9a4b-3f2d1e0c9b8c",
				VCPUs:     1,
				MemoryMiB: 256,
				Type:      TypeQEMU,
				Kernel:    "/srv/boot/vmlinuz",
				Initrd:    "/srv/boot/initrd.img",
				Cmdline:   "console=ttyS0 root=/dev/vda ds=nocloud-net;s=http://10.0.0.1:8081/x/",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DomainXML(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".xml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("DomainXML mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDomainSpecValidate(t *testing.T) {
	valid := DomainSpec{
		Name: "vm-1", UUID: "0190d5e2-7b1c-7c3e-9a4b-3f2d1e0c9b8a", VCPUs: 1, MemoryMiB: 512,
		Type: TypeQEMU, Bridge: "br0", MAC: "52:54:00:ab:cd:ef",
	}
	tests := []struct {
		name   string
		change func(*DomainSpec)
	}{
		{"empty name", func(s *DomainSpec) { s.Name = "" }},
		{"name with slash", func(s *DomainSpec) { s.Name = "../etc" }},
		{"name with markup", func(s *DomainSpec) { s.Name = "<vm>" }},
		{"bad uuid", func(s *DomainSpec) { s.UUID = "not-a-uuid" }},
		{"no vcpus", func(s *DomainSpec) { s.VCPUs = 0 }},
		{"negative memory", func(s *DomainSpec) { s.MemoryMiB = -1 }},
		{"unknown type", func(s *DomainSpec) { s.Type = "xen" }},
		{"bad mac", func(s *DomainSpec) { s.MAC = "52:54:00:ab:cd" }},
		{"multicast mac", func(s *DomainSpec) { s.MAC = "01:00:5e:00:00:01" }},
		{"bridge without mac", func(s *DomainSpec) { s.MAC = "" }},
		{"initrd without kernel", func(s *DomainSpec) { s.Initrd = "/boot/initrd" }},
	}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid
			tc.change(&s)
			if _, err := DomainXML(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("DomainXML = %v, want ErrInvalid", err)
			}
		})
	}
}
