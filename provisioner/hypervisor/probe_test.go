package hypervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
)

// probeKernel finds a Debian kernel: the file named by FIBRIX_TEST_KERNEL,
// else /boot/vmlinuz-*, else the one .ci/lab-setup.sh unpacks from the
// linux-image-amd64 package into /var/cache/fibrix/kernel.
func probeKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("FIBRIX_TEST_KERNEL"); k != "" {
		return k
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		ks, _ = filepath.Glob("/var/cache/fibrix/kernel/vmlinuz-*")
	}
	if len(ks) == 0 {
		msg := "no kernel at /boot/vmlinuz-* or /var/cache/fibrix/kernel: run .ci/lab-setup.sh as root " +
			"or set FIBRIX_TEST_KERNEL to a kernel image"
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return ks[len(ks)-1]
}

func TestProbe(t *testing.T) {
	c := dial(t, "qemu:///system")
	kernel := probeKernel(t)
	dir := hostDir(t)
	// QEMU runs as libvirt-qemu: give it a copy it can read.
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	kernel = filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	initrd := libvirttest.ProbeInitramfs(t, dir, ProbeMarker)

	// Under TCG the probe guest must always get to its marker: this proves
	// the probe itself works.
	start := time.Now()
	if err := c.probeBoot(ctx(t, 70*time.Second), TypeQEMU, kernel, initrd); err != nil {
		t.Fatalf("TCG probe boot: %v", err)
	}
	t.Logf("TCG probe boot: marker after %v", time.Since(start))

	// Whether KVM works depends on the host (LAB.md: on the lab machines it
	// does not); either answer is right, but it must come back in time.
	start = time.Now()
	ok, err := c.ProbeKVM(ctx(t, 70*time.Second), kernel, initrd)
	t.Logf("ProbeKVM = %v after %v (reason: %v)", ok, time.Since(start), err)
	if ok != (err == nil) {
		t.Errorf("ProbeKVM = %v with err %v: want an error exactly when false", ok, err)
	}
	if names := run(t, tool(t, "virsh", "libvirt-clients"), "-c", "qemu:///system", "list", "--all", "--name"); bytes.Contains([]byte(names), []byte("fibrix-probe-")) {
		t.Errorf("probe domains left behind:\n%s", names)
	}
}
