package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
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

// dirPartitions stands in for the kernel's partitions in tests beside the
// real boot test: each partition is a directory, or fails to mount.
type dirPartitions struct {
	names    []string
	dirs     map[string]string
	mountErr map[string]error

	mu     sync.Mutex
	events []string // "mount vda1 ro", "unmount vda1" …
}

func (d *dirPartitions) Rescan(_ context.Context, disk string) ([]string, error) {
	if disk != "vda" {
		return nil, fmt.Errorf("no disk %q", disk)
	}
	return d.names, nil
}

func (d *dirPartitions) Mount(part string, writable bool) (string, func() error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	mode := "ro"
	if writable {
		mode = "rw"
	}
	d.events = append(d.events, "mount "+part+" "+mode)
	if err := d.mountErr[part]; err != nil {
		return "", nil, err
	}
	return d.dirs[part], func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.events = append(d.events, "unmount "+part)
		return nil
	}, nil
}

func (d *dirPartitions) got() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.events...)
}

// osTree makes a directory holding an operating system's os-release file,
// the way Debian has it (etc/os-release a relative link into usr/lib).
func osTree(t *testing.T) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), []byte("ID=debian\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(dir, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cloudConfig is the part of a user-data document the tests look at.
type cloudConfig struct {
	top  map[string]string   // scalar keys, decoded
	list map[string][]string // list keys
	maps map[string]map[string]string
}

// parseSeedYAML reads back the YAML renderSeed writes: top-level scalars,
// lists of scalars and maps of scalars, every scalar a JSON-quoted string
// or a bare word. It fails on anything else, so it also pins the shape.
func parseSeedYAML(t *testing.T, doc string) cloudConfig {
	t.Helper()
	c := cloudConfig{top: map[string]string{}, list: map[string][]string{}, maps: map[string]map[string]string{}}
	scalar := func(s string) string {
		if strings.HasPrefix(s, `"`) {
			var v string
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				t.Fatalf("scalar %s: %v", s, err)
			}
			return v
		}
		if strings.ContainsAny(s, `"'#:{}[],&*!|>%@`+"`") {
			t.Fatalf("bare scalar %q needs quoting", s)
		}
		return s
	}
	var key string
	for _, line := range strings.Split(strings.TrimSuffix(doc, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "  - "):
			c.list[key] = append(c.list[key], scalar(strings.TrimPrefix(line, "  - ")))
		case strings.HasPrefix(line, "  "):
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "  "), ": ")
			if !ok {
				t.Fatalf("line %q", line)
			}
			if c.maps[key] == nil {
				c.maps[key] = map[string]string{}
			}
			c.maps[key][k] = scalar(v)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("line %q", line)
			}
			key = k
			if v = strings.TrimSpace(v); v != "" {
				c.top[k] = scalar(v)
			}
		}
	}
	return c
}

// checkSeed checks the seed in the root filesystem at dir against the plan
// and the host key the agent reported.
func checkSeed(t *testing.T, dir string, plan inventory.DeployPlan, hostPub string) {
	t.Helper()
	seed := filepath.Join(dir, seedDir)
	for name, want := range map[string]fs.FileMode{"": fs.ModeDir | 0o700, "meta-data": 0o644, "user-data": 0o600} {
		fi, err := os.Stat(filepath.Join(seed, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s/%s mode %v, want %v", seedDir, name, fi.Mode(), want)
		}
	}
	ents, _ := os.ReadDir(seed)
	if len(ents) != 2 {
		t.Errorf("seed holds %d files, want meta-data and user-data only", len(ents))
	}
	md, err := os.ReadFile(filepath.Join(seed, "meta-data"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"instance-id": plan.InstanceID, "local-hostname": plan.Hostname}, parseSeedYAML(t, string(md)).top); diff != "" {
		t.Errorf("meta-data (-want +got):\n%s", diff)
	}
	ud, err := os.ReadFile(filepath.Join(seed, "user-data"))
	if err != nil {
		t.Fatal(err)
	}
	checkUserData(t, ud, plan, hostPub)
}

func checkUserData(t *testing.T, ud []byte, plan inventory.DeployPlan, hostPub string) {
	t.Helper()
	if !strings.HasPrefix(string(ud), "#cloud-config\n") {
		t.Errorf("user-data does not start with #cloud-config:\n%s", ud)
	}
	c := parseSeedYAML(t, string(ud))
	if c.top["hostname"] != plan.Hostname {
		t.Errorf("hostname %q, want %q", c.top["hostname"], plan.Hostname)
	}
	if diff := cmp.Diff(plan.SSHKeys, c.list["ssh_authorized_keys"]); diff != "" {
		t.Errorf("ssh_authorized_keys (-want +got):\n%s", diff)
	}
	keys := c.maps["ssh_keys"]
	if len(keys) != 2 || keys["ed25519_public"] != hostPub || strings.Count(hostPub, " ") != 1 {
		t.Errorf("ssh_keys %v, want the ed25519 pair of %q (no comment)", keys, hostPub)
	}
	signer, err := ssh.ParsePrivateKey([]byte(keys["ed25519_private"]))
	if err != nil {
		t.Fatalf("ed25519_private: %v", err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); got != hostPub {
		t.Errorf("private key's public half %q, reported %q", got, hostPub)
	}
}

func TestRenderSeed(t *testing.T) {
	plan := inventory.DeployPlan{InstanceID: "01jd4r8k2m-1763712000", Hostname: "node1", SSHKeys: []string{
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForGoldenFileOnly0000000000000000 staff@laptop",
		`ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQFake from="10.0.0.0/8" # "quoted": {x} José`,
	}}
	key := hostKey{
		private: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nFAKE\n-----END OPENSSH PRIVATE KEY-----\n"),
		public:  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyForGoldenFileOnly00000000000000",
	}
	md, ud := renderSeed(plan, key)
	golden(t, "seed/meta-data", md)
	golden(t, "seed/user-data", ud)
	c := parseSeedYAML(t, string(ud))
	if diff := cmp.Diff(plan.SSHKeys, c.list["ssh_authorized_keys"]); diff != "" {
		t.Errorf("ssh_authorized_keys (-want +got):\n%s", diff)
	}
	if c.maps["ssh_keys"]["ed25519_private"] != string(key.private) {
		t.Errorf("ed25519_private does not read back")
	}

	plan.SSHKeys = nil
	_, ud = renderSeed(plan, key)
	if strings.Contains(string(ud), "ssh_authorized_keys") {
		t.Errorf("no keys, but an ssh_authorized_keys entry:\n%s", ud)
	}
}

func TestNewHostKey(t *testing.T) {
	k, err := newHostKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(k.private), "-----BEGIN OPENSSH PRIVATE KEY-----\n") || !strings.HasSuffix(string(k.private), "-----END OPENSSH PRIVATE KEY-----\n") {
		t.Errorf("private key is not OpenSSH PEM:\n%s", k.private)
	}
	checkUserData(t, func() []byte { _, ud := renderSeed(inventory.DeployPlan{}, k); return ud }(), inventory.DeployPlan{}, k.public)
	if !strings.HasPrefix(k.public, "ssh-ed25519 ") {
		t.Errorf("public key %q", k.public)
	}
	if other, _ := newHostKey(); other.public == k.public {
		t.Error("two host keys are the same")
	}
}

func TestSeed(t *testing.T) {
	plan := inventory.DeployPlan{InstanceID: "m1-1763712000", Hostname: "node1", SSHKeys: []string{"ssh-ed25519 AAAA staff"}}
	notMountable := errors.New("mount ext4: invalid argument")
	tests := []struct {
		name       string
		parts      func(t *testing.T) *dirPartitions
		wantPart   string
		wantErr    string
		wantEvents []string
	}{
		{"root after boot partitions", func(t *testing.T) *dirPartitions {
			return &dirPartitions{names: []string{"vda1", "vda2", "vda3"},
				dirs:     map[string]string{"vda2": t.TempDir(), "vda3": osTree(t)},
				mountErr: map[string]error{"vda1": notMountable}}
		}, "vda3", "", []string{"mount vda1 ro", "mount vda2 ro", "unmount vda2", "mount vda3 ro", "unmount vda3", "mount vda3 rw", "unmount vda3"}},
		{"stale seed replaced", func(t *testing.T) *dirPartitions {
			root := osTree(t)
			old := filepath.Join(root, seedDir)
			if err := os.MkdirAll(old, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"meta-data", "user-data", "vendor-data"} {
				if err := os.WriteFile(filepath.Join(old, f), []byte("instance-id: old\n"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			return &dirPartitions{names: []string{"vda1"}, dirs: map[string]string{"vda1": root}}
		}, "vda1", "", []string{"mount vda1 ro", "unmount vda1", "mount vda1 rw", "unmount vda1"}},
		{"no root filesystem", func(t *testing.T) *dirPartitions {
			return &dirPartitions{names: []string{"vda1", "vda2"}, dirs: map[string]string{"vda2": t.TempDir()},
				mountErr: map[string]error{"vda1": notMountable}}
		}, "", "no root filesystem (ext4 with an os-release file) on vda: vda1: mount ext4: invalid argument; vda2: no etc/os-release or usr/lib/os-release",
			[]string{"mount vda1 ro", "mount vda2 ro", "unmount vda2"}},
		{"no partitions", func(t *testing.T) *dirPartitions { return &dirPartitions{} },
			"", "no root filesystem: the image on vda has no partitions", nil},
		{"seed directory links out of the filesystem", func(t *testing.T) *dirPartitions {
			root := osTree(t)
			if err := os.MkdirAll(filepath.Join(root, "var/lib"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(t.TempDir(), filepath.Join(root, "var/lib/cloud")); err != nil {
				t.Fatal(err)
			}
			return &dirPartitions{names: []string{"vda1"}, dirs: map[string]string{"vda1": root}}
		}, "", "write cloud-init seed to vda1", []string{"mount vda1 ro", "unmount vda1", "mount vda1 rw", "unmount vda1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := tt.parts(t)
			a, log, _ := newAgent(t, "http://unused", inventory.ModeDeploy)
			a.parts = parts
			part, pub, err := a.seed(t.Context(), plan, "vda")
			if diff := cmp.Diff(tt.wantEvents, parts.got()); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if strings.Contains(log.String(), "PRIVATE KEY") {
				t.Errorf("log shows the private key:\n%s", log.String())
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("seed = %v, want an error containing %q", err, tt.wantErr)
				}
				for _, dir := range parts.dirs {
					if _, err := os.Lstat(filepath.Join(dir, "var/lib/cloud/seed")); err == nil {
						t.Errorf("a seed was written to %s", dir)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if part != tt.wantPart {
				t.Errorf("seed partition %q, want %q", part, tt.wantPart)
			}
			checkSeed(t, parts.dirs[part], plan, pub)
			if !strings.Contains(log.String(), pub) {
				t.Errorf("log lacks the host key:\n%s", log.String())
			}
		})
	}
}

func TestDeployNoRootFilesystem(t *testing.T) {
	image := []byte("a raw image without a partition table")
	reg := &region{image: image}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	reg.plan = inventory.DeployPlan{ImageURL: srv.URL + "/image", SHA256: sum(image), Disk: "vda", InstanceID: "m1-1", Hostname: "node1"}
	a, _, console := newAgent(t, srv.URL, inventory.ModeDeploy)
	a.parts = &dirPartitions{names: []string{"vda1"}, dirs: map[string]string{"vda1": t.TempDir()}}
	if err := os.WriteFile(filepath.Join(a.cfg.devDir, "vda"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := a.run(t.Context())
	if err == nil || after != nil {
		t.Fatalf("run = %v with a power action, want a failure and no reboot", err)
	}
	reps := reg.got()
	if len(reps) != 1 || reps[0].Status != "failed" || !strings.Contains(reps[0].Message, "no root filesystem") {
		t.Fatalf("reports %+v, want one failed about the root filesystem", reps)
	}
	if strings.Contains(console.String(), "deploy reported") {
		t.Errorf("console claims success: %q", console.String())
	}
}

func TestListPartitions(t *testing.T) {
	sys := t.TempDir()
	disk := filepath.Join(sys, "nvme0n1")
	for _, d := range []string{"queue", "holders", "nvme0n1p10", "nvme0n1p2", "nvme0n1p1"} {
		if err := os.MkdirAll(filepath.Join(disk, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"size": "1000\n", "nvme0n1p10/partition": "10\n", "nvme0n1p2/partition": "2\n", "nvme0n1p1/partition": "1\n", "queue/rotational": "0\n"} {
		if err := os.WriteFile(filepath.Join(disk, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := listPartitions(disk)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"nvme0n1p1", "nvme0n1p2", "nvme0n1p10"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := listPartitions(filepath.Join(sys, "sdz")); err == nil {
		t.Error("a missing disk lists")
	}
}
