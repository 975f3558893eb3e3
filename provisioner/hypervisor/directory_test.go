package hypervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestQEMUConsoleLogDirectory starts a domain whose console log directory
// does not exist: libvirt refuses it, and after EnsureDirectory the same
// domain starts and logs its console there.
func TestQEMUConsoleLogDirectory(t *testing.T) {
	c := dial(t, "qemu:///system")
	cx := ctx(t, 90*time.Second)
	pool, _ := testPool(t)
	src, sum := image(t, "64M")
	if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
		t.Fatal(err)
	}
	disk, err := c.EnsureDisk(cx, pool, "vm-console", "base", 1)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(hostDir(t), "log", "qemu") // neither level exists yet
	spec := DomainSpec{
		Name: unique("fibrix-test-console-"), UUID: uuid.NewString(),
		VCPUs: 1, MemoryMiB: 128, Type: TypeQEMU,
		DiskPath: disk, Bridge: testBridge(t, unique("br-fbc-")), MAC: "52:54:00:fb:00:02",
		ConsoleLog: filepath.Join(logDir, "console.log"),
	}
	t.Cleanup(func() { // t.Context() has ended by now
		cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, err := range []error{c.Destroy(cx, spec.Name), c.Undefine(cx, spec.Name)} {
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("cleanup of %s: %v", spec.Name, err)
			}
		}
		_, _ = c.DeleteDisk(cx, pool, "vm-console")
		_, _ = c.DeleteDisk(cx, pool, "base")
	})
	if err := c.Define(cx, spec); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(cx, spec.Name); err == nil || !strings.Contains(err.Error(), logDir) {
		t.Fatalf("Start with a missing console log directory = %v; want libvirt's refusal naming %s", err, logDir)
	}

	for i := range 2 { // the second call finds the directory there
		if err := c.EnsureDirectory(cx, logDir); err != nil {
			t.Fatalf("EnsureDirectory #%d: %v", i+1, err)
		}
	}
	fi, err := os.Stat(logDir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("console log directory after EnsureDirectory: %v, %v", fi, err)
	}
	if err := c.Start(cx, spec.Name); err != nil {
		t.Fatalf("Start after EnsureDirectory: %v", err)
	}
	if _, err := os.Stat(spec.ConsoleLog); err != nil {
		t.Errorf("console log of the running domain: %v", err)
	}
	// Nothing of the pool that made the directory is left, and the
	// directory keeps its contents when ensured again.
	out := run(t, tool(t, "virsh", "libvirt-clients"), "-c", "qemu:///system", "pool-list", "--all", "--name")
	if strings.Contains(out, "fibrix-dir-") {
		t.Errorf("a directory pool was left behind:\n%s", out)
	}
	if err := c.EnsureDirectory(cx, logDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spec.ConsoleLog); err != nil {
		t.Errorf("console log after ensuring its directory again: %v", err)
	}
}

func TestQEMUEnsureDirectoryRefusals(t *testing.T) {
	c := dial(t, "qemu:///system")
	cx := ctx(t, 30*time.Second)
	file := filepath.Join(hostDir(t), "not-a-directory")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureDirectory(cx, file); err == nil {
		t.Errorf("EnsureDirectory(%s), a regular file, succeeded", file)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "x" {
		t.Errorf("the file was changed: %q, %v", b, err)
	}
	for _, dir := range []string{"", "relative/dir", "/var/log/../tmp", "/var/log/libvirt/"} {
		if err := c.EnsureDirectory(cx, dir); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnsureDirectory(%q) = %v, want ErrInvalid", dir, err)
		}
	}
}
