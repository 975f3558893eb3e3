package libvirttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// probeInit is the /init of the probe initramfs: print the marker on the
// console, then power off (which ends the domain).
const probeInit = `package main

import (
	"os"
	"syscall"
)

func main() {
	os.Stdout.WriteString("\nMARKER\n")
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
`

// ProbeInitramfs builds, in dir, a newc cpio archive holding /dev/console
// and a static Go /init that prints marker on the console and powers off:
// the guest of a KVM probe boot (hypervisor.ProbeKVM).
func ProbeInitramfs(t testing.TB, dir, marker string) string {
	t.Helper()
	return Initramfs(t, dir, "probe.cpio", strings.ReplaceAll(probeInit, "MARKER", marker))
}

// Initramfs builds, in dir, a newc cpio archive named name holding
// /dev/console and a static /init built from the Go program initSource.
func Initramfs(t testing.TB, dir, name, initSource string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(src, []byte(initSource), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, src)
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
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
