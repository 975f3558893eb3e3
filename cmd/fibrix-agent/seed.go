package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

// seedDir is where cloud-init's NoCloud datasource looks for a seed on the
// root filesystem itself (no ISO, no network needed).
const seedDir = "var/lib/cloud/seed/nocloud"

// partitions is how a deploy reaches the filesystems of the disk it wrote:
// the kernel's block layer in the agent, plain directories in tests.
type partitions interface {
	// Rescan makes the kernel re-read disk's partition table and returns
	// the partitions' names (vda1, nvme0n1p2 …) in partition-number order
	// once their device nodes exist.
	Rescan(ctx context.Context, disk string) ([]string, error)
	// Mount mounts partition part as ext4, read-write only when asked, and
	// returns the mount point and the function that unmounts it.
	Mount(part string, writable bool) (dir string, unmount func() error, err error)
}

// hostKey is a generated SSH host key pair.
type hostKey struct {
	private []byte // OpenSSH PEM
	public  string // authorized_keys form, no comment
}

func newHostKey() (hostKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return hostKey{}, fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return hostKey{}, fmt.Errorf("encode host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return hostKey{}, fmt.Errorf("host key: %w", err)
	}
	return hostKey{
		private: pem.EncodeToMemory(block),
		public:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
	}, nil
}

// yamlString quotes s as a YAML double-quoted scalar: JSON strings are valid
// YAML, so json.Marshal does the escaping and nothing is spliced raw.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// renderSeed returns the NoCloud meta-data and user-data for plan: the
// instance and its name, the plan's keys for the image's default user, and
// key as the only SSH host key (cloud-init's cc_ssh deletes the image's own
// keys and, given ssh_keys, generates none).
func renderSeed(plan inventory.DeployPlan, key hostKey) (metaData, userData []byte) {
	metaData = fmt.Appendf(nil, "instance-id: %s\nlocal-hostname: %s\n", yamlString(plan.InstanceID), yamlString(plan.Hostname))
	var b bytes.Buffer
	b.WriteString("#cloud-config\n")
	fmt.Fprintf(&b, "hostname: %s\n", yamlString(plan.Hostname))
	b.WriteString("manage_etc_hosts: true\n")
	// cloud-init's schema wants at least one key when the list is there.
	if len(plan.SSHKeys) > 0 {
		b.WriteString("ssh_authorized_keys:\n")
		for _, k := range plan.SSHKeys {
			fmt.Fprintf(&b, "  - %s\n", yamlString(k))
		}
	}
	b.WriteString("ssh_pwauth: false\n")
	b.WriteString("disable_root: true\n")
	b.WriteString("ssh_deletekeys: true\n")
	b.WriteString("ssh_keys:\n")
	fmt.Fprintf(&b, "  ed25519_private: %s\n", yamlString(string(key.private)))
	fmt.Fprintf(&b, "  ed25519_public: %s\n", yamlString(key.public))
	return metaData, b.Bytes()
}

// seed finds the root filesystem of the image just written to disk and
// leaves the cloud-init seed with a new SSH host key on it. It returns the
// partition it wrote to and the host key's public half.
func (a *agent) seed(ctx context.Context, plan inventory.DeployPlan, disk string) (part, hostPub string, err error) {
	parts, err := a.parts.Rescan(ctx, disk)
	if err != nil {
		return "", "", fmt.Errorf("re-read partition table of %s: %w", disk, err)
	}
	if len(parts) == 0 {
		return "", "", fmt.Errorf("no root filesystem: the image on %s has no partitions", disk)
	}
	var tried []string
	for _, p := range parts {
		ok, why, err := a.isRoot(p)
		if err != nil {
			return "", "", err
		}
		if !ok {
			tried = append(tried, p+": "+why)
			continue
		}
		key, err := newHostKey()
		if err != nil {
			return "", "", err
		}
		metaData, userData := renderSeed(plan, key)
		dir, unmount, err := a.parts.Mount(p, true)
		if err != nil {
			return "", "", fmt.Errorf("mount root filesystem %s read-write: %w", p, err)
		}
		err = writeSeed(dir, metaData, userData)
		if uerr := unmount(); uerr != nil && err == nil {
			err = fmt.Errorf("unmount %s: %w", p, uerr)
		}
		if err != nil {
			return "", "", fmt.Errorf("write cloud-init seed to %s: %w", p, err)
		}
		a.log.Info("cloud-init seed written", "partition", p, "instance_id", plan.InstanceID,
			"hostname", plan.Hostname, "ssh_keys", len(plan.SSHKeys), "ssh_host_key", key.public)
		return p, key.public, nil
	}
	return "", "", fmt.Errorf("no root filesystem (ext4 with an os-release file) on %s: %s", disk, strings.Join(tried, "; "))
}

// isRoot mounts part read-only, so partitions that are not the root stay
// untouched, and tells whether it holds an operating system; why says what
// ruled it out. err is set only when it could not be unmounted again.
func (a *agent) isRoot(part string) (ok bool, why string, err error) {
	dir, unmount, err := a.parts.Mount(part, false)
	if err != nil {
		return false, err.Error(), nil
	}
	root, err := os.OpenRoot(dir)
	if err == nil {
		for _, f := range []string{"etc/os-release", "usr/lib/os-release"} {
			if _, serr := root.Lstat(f); serr == nil {
				ok = true
				break
			}
		}
		root.Close()
	}
	if uerr := unmount(); uerr != nil {
		return false, "", fmt.Errorf("unmount %s: %w", part, uerr)
	}
	if err != nil {
		return false, err.Error(), nil
	}
	return ok, "no etc/os-release or usr/lib/os-release", nil
}

// writeSeed replaces the NoCloud seed under the root filesystem at dir.
// Paths are resolved inside dir: a symlink in the image cannot send the
// files elsewhere.
func writeSeed(dir string, metaData, userData []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.RemoveAll(seedDir); err != nil {
		return fmt.Errorf("remove old seed: %w", err)
	}
	if err := root.MkdirAll(filepath.Dir(seedDir), 0o755); err != nil {
		return err
	}
	// The seed holds the host's private key: only root may read it.
	if err := root.Mkdir(seedDir, 0o700); err != nil {
		return err
	}
	if err := root.Chmod(seedDir, 0o700); err != nil { // whatever the umask
		return err
	}
	for _, f := range []struct {
		name string
		mode fs.FileMode
		data []byte
	}{{"meta-data", 0o644, metaData}, {"user-data", 0o600, userData}} {
		if err := writeFileSync(root, seedDir+"/"+f.name, f.mode, f.data); err != nil {
			return err
		}
	}
	for _, d := range []string{seedDir, filepath.Dir(seedDir)} {
		if err := syncDir(root, d); err != nil {
			return err
		}
	}
	return nil
}

func writeFileSync(root *os.Root, name string, mode fs.FileMode, data []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // whatever the umask
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// listPartitions reads the partitions of a disk from its sysfs directory
// (/sys/block/<disk>): the entries with a partition file, ordered by the
// number in it.
func listPartitions(sysDisk string) ([]string, error) {
	ents, err := os.ReadDir(sysDisk)
	if err != nil {
		return nil, err
	}
	type part struct {
		name string
		n    int
	}
	var parts []part
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysDisk, e.Name(), "partition"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s/partition: %w", e.Name(), err)
		}
		parts = append(parts, part{e.Name(), n})
	}
	slices.SortFunc(parts, func(a, b part) int { return a.n - b.n })
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.name
	}
	return names, nil
}
