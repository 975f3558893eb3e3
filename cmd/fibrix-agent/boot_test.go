package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

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
	for tool, pkg := range map[string]string{"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "cpio": "cpio", "apt-get": "apt", "dpkg-deb": "dpkg", "go": "golang",
		"sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs", "e2fsck": "e2fsprogs", "ssh-keygen": "openssh-client"} {
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
		image, layout := partitionedImage(t)
		reg := &region{image: gzipped(t, image), token: token}
		url := serve(t, reg)
		reg.plan = inventory.DeployPlan{ImageURL: url + "/image", SHA256: sum(reg.image), Disk: "vda",
			InstanceID: "m1-1763712000", Hostname: "node1", SSHKeys: []string{customerKey(t), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeSecondKey0000000000000000000000000000 \"staff\": #2"}}
		disk := rawDisk(t)
		v := runVM(t, boot, "fibrix.mode=deploy fibrix.url="+url+" fibrix.token="+token, disk, "raw")
		t.Logf("QEMU start → report %v, → exit %v (%d MiB image, gzip %d KiB)", v.reportAfter(reg), v.took, len(image)>>20, len(reg.image)>>10)
		reps := reg.got()
		if len(reps) != 1 || reps[0].Status != "ok" || reps[0].Deploy == nil || reps[0].Deploy.BytesWritten != int64(len(image)) {
			t.Fatalf("reports %+v, want one ok deploy of %d bytes; console:\n%s", reps, len(image), v.console)
		}
		res := *reps[0].Deploy
		if err := inventory.Validate(reps[0]); err != nil {
			t.Errorf("report does not validate: %v", err)
		}
		// vda1 holds no filesystem and vda2 no operating system: the root is vda3.
		if res.SeedPartition != "vda3" || !strings.HasPrefix(res.SSHHostKey, "ssh-ed25519 ") {
			t.Errorf("deploy result %+v, want the seed on vda3 and an ed25519 host key", res)
		}
		got, err := os.ReadFile(disk)
		if err != nil {
			t.Fatal(err)
		}
		// Only the root filesystem changed; looking at vda2 left it as it was.
		root := layout[2]
		if !bytes.Equal(got[:root.start], image[:root.start]) || !bytes.Equal(got[root.end:len(image)], image[root.end:]) {
			t.Error("the disk outside the root filesystem does not hold the image")
		}
		part := filepath.Join(t.TempDir(), "root.ext4")
		if err := os.WriteFile(part, got[root.start:root.end], 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("e2fsck", "-f", "-n", part).CombinedOutput(); err != nil {
			t.Errorf("e2fsck of the root filesystem after the deploy: %v\n%s", err, out)
		}
		debugfs := func(req string) string {
			t.Helper()
			out, err := exec.Command("debugfs", "-R", req, part).Output()
			if err != nil {
				t.Fatalf("debugfs -R %q: %v", req, err)
			}
			return string(out)
		}
		// The stale seed the image carried is gone.
		if ls := debugfs("ls /" + seedDir); strings.Contains(ls, "vendor-data") || !strings.Contains(ls, "user-data") {
			t.Errorf("seed directory holds:\n%s", ls)
		}
		for f, want := range map[string]string{seedDir: "Mode:  0700", seedDir + "/meta-data": "Mode:  0644", seedDir + "/user-data": "Mode:  0600"} {
			st := debugfs("stat /" + f)
			if !strings.Contains(st, want) || !regexp.MustCompile(`User:\s+0\s+Group:\s+0\s`).MatchString(st) {
				t.Errorf("/%s is not root's with %s:\n%s", f, want, st)
			}
		}
		md := debugfs("cat /" + seedDir + "/meta-data")
		if want := "instance-id: \"m1-1763712000\"\nlocal-hostname: \"node1\"\n"; md != want {
			t.Errorf("meta-data %q, want %q", md, want)
		}
		ud := debugfs("cat /" + seedDir + "/user-data")
		checkUserData(t, []byte(ud), reg.plan, res.SSHHostKey)
		// OpenSSH itself agrees that the private key in the seed is the reported one.
		priv := filepath.Join(t.TempDir(), "host_key")
		if err := os.WriteFile(priv, []byte(parseSeedYAML(t, ud).maps["ssh_keys"]["ed25519_private"]), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ssh-keygen", "-y", "-f", priv).Output()
		if err != nil {
			t.Fatalf("ssh-keygen -y: %v", err)
		}
		if f := strings.Fields(string(out)); len(f) < 2 || f[0]+" "+f[1] != res.SSHHostKey {
			t.Errorf("ssh-keygen derives %q from the seed's private key, the report says %q", out, res.SSHHostKey)
		}
		if strings.Contains(v.console, "PRIVATE KEY") {
			t.Errorf("console shows the private key:\n%s", v.console)
		}
		v.wantExit(t, "reboot: Restarting system", "FIBRIX-AGENT: deploy reported")
	})

	t.Run("deploy checksum mismatch", func(t *testing.T) {
		reg := &region{image: testImage(), token: token}
		url := serve(t, reg)
		reg.plan = inventory.DeployPlan{ImageURL: url + "/image", SHA256: sum([]byte("not the image")), Disk: "/dev/vda", InstanceID: "m1-1", Hostname: "node1"}
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

// span is where a partition is in an image, in bytes.
type span struct{ start, end int }

// partitionedImage builds a deploy image the way cloud images are laid
// out, without root or loop devices: a GPT (sfdisk on a file) with a BIOS
// boot partition that holds no filesystem, an ext4 /boot without an
// os-release file and an ext4 root filesystem with one (mkfs.ext4 -d
// populates each at its offset). The root carries random bytes, so the
// transfer is real, and a stale seed the deploy must replace.
func partitionedImage(t *testing.T) ([]byte, []span) {
	dir := t.TempDir()
	img := filepath.Join(dir, "image.raw")
	if err := os.WriteFile(img, make([]byte, 24<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	table := "label: gpt\n" +
		"size=1MiB, type=21686148-6449-6E6F-744E-656564454649\n" + // BIOS boot
		"size=4MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n" +
		"type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
	sfdisk := exec.Command("sfdisk", "-q", img)
	sfdisk.Stdin = strings.NewReader(table)
	if out, err := sfdisk.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	out, err := exec.Command("sfdisk", "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var dump struct {
		PartitionTable struct {
			SectorSize int `json:"sectorsize"`
			Partitions []struct {
				Start, Size int
			}
		}
	}
	if err := json.Unmarshal(out, &dump); err != nil || len(dump.PartitionTable.Partitions) != 3 || dump.PartitionTable.SectorSize != 512 {
		t.Fatalf("sfdisk -J: %v\n%s", err, out)
	}
	var layout []span
	for _, p := range dump.PartitionTable.Partitions {
		layout = append(layout, span{p.Start * 512, (p.Start + p.Size) * 512})
	}

	files := func(m map[string][]byte) string {
		d := t.TempDir()
		for name, body := range m {
			if err := os.MkdirAll(filepath.Join(d, filepath.Dir(name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, name), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	noise := make([]byte, 2<<20)
	_, _ = rand.Read(noise)
	trees := []string{
		files(map[string][]byte{"grub/grub.cfg": []byte("# not an operating system\n")}),
		files(map[string][]byte{
			"etc/os-release":         []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"),
			"usr/share/fibrix/noise": noise,
			seedDir + "/user-data":   []byte("#cloud-config\nhostname: stale\n"),
			seedDir + "/meta-data":   []byte("instance-id: stale\n"),
			seedDir + "/vendor-data": []byte("#cloud-config\n"),
		}),
	}
	for i, tree := range trees {
		p := layout[i+1]
		mkfs := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, "-E", fmt.Sprintf("offset=%d", p.start), img, fmt.Sprintf("%dk", (p.end-p.start)>>10))
		if out, err := mkfs.CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b, layout
}

// customerKey is a real public key line, as a customer would upload it.
func customerKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " alice@laptop"
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
