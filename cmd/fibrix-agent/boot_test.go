package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

const (
	bootMAC    = "52:54:00:12:34:56"
	diskSerial = "DISK123"
	diskSize   = 64 << 20
	// bootTimeout bounds one boot of the agent environment under TCG
	// (measured: a report about 6 s after QEMU starts).
	bootTimeout = 2 * time.Minute
	// token is long enough to be searched for on the console.
	token = "T-one-time-4f1d9c"
)

func unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestBoot builds the agent and the initramfs with the agent-initramfs
// script from Debian packages, then boots it under QEMU (TCG, user-mode
// networking: the guest reaches the test's region on 127.0.0.1 as 10.0.2.2)
// once per mode and checks what the region receives and what happens to the
// disk and the machine.
func TestBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	for tool, pkg := range map[string]string{"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "cpio": "cpio", "apt-get": "apt", "dpkg-deb": "dpkg", "go": "golang"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" not found (apt-get install --no-install-recommends "+pkg+")")
		}
	}
	dir := t.TempDir()
	start := time.Now()
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "fibrix-agent"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	boot := filepath.Join(dir, "boot")
	script := exec.CommandContext(t.Context(), "../../.ci/agent-initramfs.sh", boot)
	script.Env = append(os.Environ(), "AGENT="+filepath.Join(dir, "fibrix-agent"))
	out, err := script.CombinedOutput()
	if err != nil {
		t.Fatalf("agent-initramfs: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(boot, "initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent + initramfs built in %v; initrd.img %d KiB\n%s", time.Since(start).Round(time.Millisecond), fi.Size()>>10, out)

	t.Run("commission", func(t *testing.T) {
		reg := &region{}
		url := serve(t, reg)
		disk := filepath.Join(t.TempDir(), "disk.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, fmt.Sprint(diskSize)).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v\n%s", err, out)
		}
		// QEMU's simulated BMC behind a KCS interface: the in-band IPMI device the agent looks for.
		v := runVM(t, boot, "fibrix.mode=commission fibrix.url="+url+" fibrix.token="+token, disk, "qcow2",
			"-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0")
		reps := reg.got()
		if len(reps) != 1 {
			t.Fatalf("region got %d reports, want 1; console:\n%s", len(reps), v.console)
		}
		r := reps[0]
		t.Logf("QEMU start → report %v, → exit %v; guest kernel clock:%s; report: %+v", v.reportAfter(reg), v.took, v.kernelTimes(), *r.Inventory)
		if err := inventory.Validate(r); err != nil {
			t.Errorf("report does not validate: %v", err)
		}
		if r.Token != token || r.MAC != bootMAC || r.Mode != "commission" || r.Status != "ok" {
			t.Errorf("report header %q %q %q %q", r.Token, r.MAC, r.Mode, r.Status)
		}
		inv := r.Inventory
		if len(inv.Disks) != 1 || inv.Disks[0].Serial != diskSerial || inv.Disks[0].SizeBytes != diskSize || inv.Disks[0].Name != "vda" {
			t.Errorf("disks %+v, want vda %d bytes serial %s", inv.Disks, diskSize, diskSerial)
		}
		if len(inv.NICs) != 1 || inv.NICs[0].MAC != bootMAC || !inv.NICs[0].Link {
			t.Errorf("nics %+v, want one linked %s", inv.NICs, bootMAC)
		}
		if inv.MemoryMiB < 480 || inv.MemoryMiB > 544 {
			t.Errorf("memory %d MiB, want about 512", inv.MemoryMiB)
		}
		if inv.CPU.Threads != 1 || inv.CPU.Model == "" {
			t.Errorf("cpu %+v, want one thread with a model", inv.CPU)
		}
		if !inv.BMC.Present || !strings.Contains(inv.BMC.Note, "/dev/ipmi0") {
			t.Errorf("bmc %+v, want the IPMI device seen", inv.BMC)
		}
		v.wantExit(t, "reboot: Power down", "FIBRIX-AGENT: commissioning reported")
	})

	t.Run("deploy", func(t *testing.T) {
		image := testImage()
		reg := &region{image: gzipped(t, image), token: token}
		url := serve(t, reg)
		reg.plan = inventory.DeployPlan{ImageURL: url + "/image", SHA256: sum(reg.image), Disk: "vda", Hostname: "node1"}
		disk := rawDisk(t)
		v := runVM(t, boot, "fibrix.mode=deploy fibrix.url="+url+" fibrix.token="+token, disk, "raw")
		t.Logf("QEMU start → report %v, → exit %v (%d MiB image, gzip %d KiB)", v.reportAfter(reg), v.took, len(image)>>20, len(reg.image)>>10)
		reps := reg.got()
		if len(reps) != 1 || reps[0].Status != "ok" || reps[0].Deploy == nil || reps[0].Deploy.BytesWritten != int64(len(image)) {
			t.Fatalf("reports %+v, want one ok deploy of %d bytes; console:\n%s", reps, len(image), v.console)
		}
		got, err := os.ReadFile(disk)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:len(image)], image) {
			t.Error("disk does not hold the image")
		}
		v.wantExit(t, "reboot: Restarting system", "FIBRIX-AGENT: deploy reported")
	})

	t.Run("deploy checksum mismatch", func(t *testing.T) {
		reg := &region{image: testImage(), token: token}
		url := serve(t, reg)
		reg.plan = inventory.DeployPlan{ImageURL: url + "/image", SHA256: sum([]byte("not the image")), Disk: "/dev/vda"}
		disk := rawDisk(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan *vm, 1)
		go func() {
			done <- runVMContext(ctx, t, boot, "fibrix.mode=deploy fibrix.url="+url+" fibrix.token="+token, disk, "raw")
		}()
		deadline := time.Now().Add(bootTimeout)
		for len(reg.got()) == 0 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		// The agent must neither reboot nor power off: QEMU still runs a while later.
		time.Sleep(3 * time.Second)
		select {
		case v := <-done:
			cancel()
			t.Fatalf("QEMU ended by itself after a bad checksum; console:\n%s", v.console)
		default:
		}
		cancel()
		v := <-done
		reps := reg.got()
		if len(reps) != 1 || reps[0].Status != "failed" || !strings.Contains(reps[0].Message, "checksum mismatch") {
			t.Fatalf("reports %+v, want one failed about the checksum; console:\n%s", reps, v.console)
		}
		if !strings.Contains(v.console, "FIBRIX-AGENT: deploy failed") {
			t.Errorf("console lacks the failure marker:\n%s", v.console)
		}
	})

	t.Run("release with quick wipe", func(t *testing.T) {
		reg := &region{}
		url := serve(t, reg)
		disk := rawDisk(t)
		v := runVM(t, boot, "fibrix.mode=release fibrix.wipe=quick fibrix.url="+url+" fibrix.token="+token, disk, "raw")
		t.Logf("QEMU start → report %v, → exit %v", v.reportAfter(reg), v.took)
		reps := reg.got()
		if len(reps) != 1 || reps[0].Status != "ok" || len(reps[0].Wiped) != 1 || reps[0].Wiped[0] != "vda" {
			t.Fatalf("reports %+v, want one ok release that wiped vda; console:\n%s", reps, v.console)
		}
		got, err := os.ReadFile(disk)
		if err != nil {
			t.Fatal(err)
		}
		zero := make([]byte, wipeSpan)
		if !bytes.Equal(got[:wipeSpan], zero) || !bytes.Equal(got[len(got)-wipeSpan:], zero) {
			t.Error("ends of the disk not zeroed")
		}
		if bytes.Equal(got[wipeSpan:2*wipeSpan], zero) {
			t.Error("the middle of the disk was zeroed too")
		}
		v.wantExit(t, "reboot: Power down", "FIBRIX-AGENT: release reported")
	})
}

// testImage is a small raw "disk image": random bytes (incompressible, so
// the transfer is real) and text.
func testImage() []byte {
	b := make([]byte, 4<<20)
	_, _ = rand.Read(b[:1<<20])
	copy(b[1<<20:], bytes.Repeat([]byte("fibrix deploy test image\n"), 100000))
	return b
}

// rawDisk is a raw disk file full of non-zero random bytes.
func rawDisk(t *testing.T) string {
	b := make([]byte, diskSize)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] |= 1
	}
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve starts the region on 127.0.0.1 and returns its URL as the guest sees it.
func serve(t *testing.T, reg *region) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return fmt.Sprintf("http://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port)
}

type vm struct {
	start   time.Time
	took    time.Duration
	err     error
	console string
}

func (v *vm) reportAfter(reg *region) time.Duration {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.firstReport.IsZero() {
		return -1
	}
	return reg.firstReport.Sub(v.start).Round(time.Millisecond)
}

// kernelTimes picks the guest kernel's own timestamps of running /init and
// of powering off or rebooting from the console.
func (v *vm) kernelTimes() string {
	var b strings.Builder
	for _, line := range strings.Split(v.console, "\n") {
		if strings.Contains(line, "Run /init") || strings.Contains(line, "reboot: ") {
			b.WriteString(" " + strings.TrimSpace(line))
		}
	}
	return b.String()
}

// wantExit checks that QEMU ended by itself, the way the console says.
func (v *vm) wantExit(t *testing.T, kernelLine, marker string) {
	t.Helper()
	if v.err != nil {
		t.Errorf("QEMU did not end by itself: %v", v.err)
	}
	for _, s := range []string{marker, kernelLine} {
		if !strings.Contains(v.console, s) {
			t.Errorf("console lacks %q:\n%s", s, v.console)
		}
	}
	// The kernel echoes its command line; no other console line may show the token.
	for _, line := range strings.Split(v.console, "\n") {
		if strings.Contains(line, token) && !strings.Contains(line, "ommand line:") {
			t.Errorf("console shows the token: %s", line)
		}
	}
}

func runVM(t *testing.T, boot, params, disk, format string, extra ...string) *vm {
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	return runVMContext(ctx, t, boot, params, disk, format, extra...)
}

func runVMContext(ctx context.Context, t *testing.T, boot, params, disk, format string, extra ...string) *vm {
	args := []string{"-accel", "tcg", "-m", "512", "-nographic",
		"-kernel", filepath.Join(boot, "vmlinuz"), "-initrd", filepath.Join(boot, "initrd.img"),
		"-append", "console=ttyS0 panic=-1 " + params,
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=" + bootMAC,
		// The serial goes on the device: QEMU 7.2 refuses -drive …,serial=.
		"-drive", "file=" + disk + ",if=none,id=d0,format=" + format, "-device", "virtio-blk-pci,drive=d0,serial=" + diskSerial,
		"-no-reboot"}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(args, extra...)...)
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	v := &vm{start: time.Now()}
	v.err = cmd.Run()
	v.took = time.Since(v.start).Round(time.Millisecond)
	v.console = console.String()
	return v
}
