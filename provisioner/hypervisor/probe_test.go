package hypervisor

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// probeInit is the /init of the probe initramfs: print the marker on the
// console, then power off (which ends the domain).
const probeInit = `package main

import (
	"os"
	"syscall"
)

func main() {
	os.Stdout.WriteString("\n` + ProbeMarker + `\n")
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
`

// probeKernel finds a Debian kernel: /boot/vmlinuz-*, else the file named by
// FIBRIX_TEST_KERNEL (e.g. extracted with dpkg-deb -x from the
// linux-image-amd64 package's kernel .deb).
func probeKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("FIBRIX_TEST_KERNEL"); k != "" {
		return k
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		msg := "no kernel at /boot/vmlinuz-*: install the Debian package linux-image-amd64 " +
			"or set FIBRIX_TEST_KERNEL to a kernel image"
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return ks[len(ks)-1]
}

// probeInitramfs builds a newc cpio archive holding /dev/console and a
// static Go /init that prints ProbeMarker and powers off.
func probeInitramfs(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(src, []byte(probeInit), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command(tool(t, "go", "golang-go (or the Go toolchain)"), "build", "-ldflags=-s -w", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	cmd.Dir = filepath.Dir(src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe init: %v\n%s", err, out)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	ino := 1
	add := func(name string, mode, rdevMajor, rdevMinor int, data []byte) {
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
		ino++
		buf.WriteString(name + "\x00")
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
		buf.Write(data)
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
	}
	add("dev", 0o040755, 0, 0, nil)
	add("dev/console", 0o020600, 5, 1, nil)
	add("init", 0o100755, 0, 0, initBin)
	add("TRAILER!!!", 0, 0, 0, nil)
	p := filepath.Join(dir, "probe.cpio")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
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
	initrd := probeInitramfs(t, dir)

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
