package guestimage

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildTimeout bounds a test's image build; a cold one takes a few minutes.
const buildTimeout = 20 * time.Minute

// Packages names the Debian packages the build needs, for messages and CI.
const Packages = "mmdebstrap e2fsprogs qemu-utils"

// ForTest returns the guest image for a test, building it into CacheDir on
// first use. Without the build tools or root it skips the test, or fails it
// when the environment variable CI is set.
func ForTest(t testing.TB) Image {
	t.Helper()
	var missing []string
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	switch {
	case len(missing) > 0:
		unavailable(t, "guest image build needs "+strings.Join(missing, ", ")+
			" (apt-get install --no-install-recommends "+Packages+")")
	case os.Geteuid() != 0:
		unavailable(t, "guest image build needs root (mmdebstrap --mode=root)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	img, err := Build(ctx, CacheDir(), log)
	if err != nil {
		t.Fatalf("build guest image: %v", err)
	}
	return img
}

func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// hostKeyLine matches a public key line that cloud-init prints between its
// SSH HOST KEY KEYS markers.
var hostKeyLine = regexp.MustCompile(`^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) (AAAA[0-9A-Za-z+/=]+)`)

// HostKeys reads the guest's SSH host keys ("type base64") from a serial
// console log, as cloud-init prints them on first boot, so that a test can
// pin them in known_hosts instead of trusting the first connection.
func HostKeys(serialLog string) []string {
	f, err := os.Open(serialLog)
	if err != nil {
		return nil
	}
	defer f.Close()
	var keys []string
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasSuffix(line, "-----BEGIN SSH HOST KEY KEYS-----"):
			in, keys = true, nil
		case strings.HasSuffix(line, "-----END SSH HOST KEY KEYS-----"):
			if in && len(keys) > 0 {
				return keys
			}
			in = false
		case in:
			if m := hostKeyLine.FindStringSubmatch(line); m != nil {
				keys = append(keys, m[1]+" "+m[2])
			}
		}
	}
	return nil
}

// WithFile returns a copy of the image's disk, as an uncompressed qcow2 in
// dir, whose file system also holds a file at path (an absolute path in an
// existing directory) with content: a second image that boots like the
// first and tells itself apart, for tests that change a VM's image. It
// takes a few seconds and needs no mount: debugfs writes into the file
// system image. Without qemu-img or debugfs it skips the test, or fails it
// when CI is set.
func (img Image) WithFile(t testing.TB, dir, path, content string) string {
	t.Helper()
	for _, tool := range []string{"qemu-img", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "a marked guest image needs "+tool+" (apt-get install --no-install-recommends qemu-utils e2fsprogs)")
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	raw, src := filepath.Join(dir, "marked.raw"), filepath.Join(dir, "marked.content")
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	run("qemu-img", "convert", "-O", "raw", img.Disk, raw)
	cmds := filepath.Join(dir, "marked.debugfs")
	if err := os.WriteFile(cmds, []byte("cd "+filepath.Dir(path)+"\nwrite "+src+" "+filepath.Base(path)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("debugfs", "-w", "-f", cmds, raw)
	// debugfs reports failed commands on its output only; read the file back.
	if out, err := exec.Command("debugfs", "-R", "cat "+path, raw).Output(); err != nil || string(out) != content {
		t.Fatalf("marked image: %s holds %q (%v), want %q", path, out, err, content)
	}
	disk := filepath.Join(dir, "marked.qcow2")
	run("qemu-img", "convert", "-O", "qcow2", raw, disk)
	if err := os.Remove(raw); err != nil {
		t.Fatal(err)
	}
	return disk
}
