package hypervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
)

// dial connects to a local libvirt URI, starting libvirtd when needed.
func dial(t *testing.T, uri string) *Conn {
	t.Helper()
	libvirttest.Ensure(t)
	c, err := Dial(t.Context(), Config{URI: uri, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Dial(%s): %v", uri, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// tool returns the path of a program, skipping (or failing in CI) when the
// Debian package that ships it is not installed.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not found: install the Debian package " + pkg
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return p
}

// run runs a command and fails the test when it fails. It works in
// Cleanup too, where t.Context() has ended.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// hostDir returns a temporary directory that QEMU, running as the
// unprivileged libvirt-qemu user, can reach.
func hostDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// unique names a libvirt object so that test binaries running at once (two
// checkouts, or go test ./... beside a package run) do not collide on the
// shared daemon.
func unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, os.Getpid()) }

// ctx returns a context bounded well inside the test's deadline.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return c
}
