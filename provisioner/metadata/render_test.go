package metadata

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func sample() store.Metadata {
	return store.Metadata{
		VMID: "0191d2c4-7a1e-7c3a-9d7e-1a2b3c4d5e6f", Name: "web-1", TenantSlug: "acme", State: store.VMRunning,
		MAC: "52:54:00:AB:CD:EF",
		SSHKeys: []string{
			"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForGoldenFileOnly0000000000000000 alice@laptop",
			`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForGoldenFileOnly1111111111111111 "quoted": comment #1`,
		},
		Address: &store.VMAddress{
			Addr:    netip.MustParseAddr("10.20.0.11"),
			Prefix:  netip.MustParsePrefix("10.20.0.11/24"),
			Gateway: netip.MustParseAddr("10.20.0.1"),
			DNS:     []netip.Addr{netip.MustParseAddr("10.20.0.1"), netip.MustParseAddr("9.9.9.9")},
		},
	}
}

func TestGolden(t *testing.T) {
	s, err := New(Config{Zone: "cloud.internal."}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sample()
	golden(t, "meta-data", metaData(m))
	golden(t, "user-data", s.ourCloudConfig(m))
	golden(t, "network-config", NetworkConfig(m))
	m.SSHKeys = nil
	golden(t, "user-data-no-keys", s.ourCloudConfig(m))
}

// TestGoldenRescue pins what a console password reset changes: a new
// instance-id per reset, and the password hash for the default user, who
// is unlocked for the console while SSH stays keys only.
func TestGoldenRescue(t *testing.T) {
	s, err := New(Config{Zone: "cloud.internal."}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := sample()
	m.RescueGeneration = 2
	m.RescuePasswordHash = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
	golden(t, "meta-data-rescue", metaData(m))
	golden(t, "user-data-rescue", s.ourCloudConfig(m))
}

func TestCustomerContentType(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"cloud-config", "#cloud-config\npackages: [nginx]\n", "text/cloud-config"},
		{"cloud-config archive", "#cloud-config-archive\n- type: foo\n", "text/cloud-config-archive"},
		{"shell", "#!/bin/sh\necho hi\n", "text/x-shellscript"},
		{"include once", "#include-once\nhttps://example.com/x\n", "text/x-include-once-url"},
		{"include", "#include\nhttps://example.com/x\n", "text/x-include-url"},
		{"boothook", "#cloud-boothook\necho\n", "text/cloud-boothook"},
		{"jinja", "## template: jinja\n#cloud-config\n", "text/jinja2"},
		{"upper case", "#Cloud-Config\n", "text/cloud-config"},
		{"other", "hello\n", "text/plain"},
	} {
		if got := customerContentType(tc.in); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestYAMLStringRoundTrips(t *testing.T) {
	for _, in := range []string{"plain", "a: b", "#comment", "- dash", `"quoted" \ back`, "new\nline", "tab\t", "ünïcode", "\x00\x7f", "yes", "null", "@at", "*star", "{a}"} {
		var out string
		if err := json.Unmarshal([]byte(yamlString(in)), &out); err != nil || out != in {
			t.Errorf("%q: quoted %s, read back %q, %v", in, yamlString(in), out, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		in      Config
		want    Config
		wantErr bool
	}{
		"defaults":  {in: Config{Zone: " cloud.internal. "}, want: Config{Zone: "cloud.internal", DefaultUser: "debian"}},
		"no zone":   {in: Config{}, wantErr: true},
		"bad user":  {in: Config{Zone: "z", DefaultUser: "a b"}, wantErr: true},
		"keeps set": {in: Config{Zone: "z", DefaultUser: "admin", AllowAnySource: true}, want: Config{Zone: "z", DefaultUser: "admin", AllowAnySource: true}},
	} {
		err := tc.in.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if err == nil {
			if diff := cmp.Diff(tc.want, tc.in); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	}
}
