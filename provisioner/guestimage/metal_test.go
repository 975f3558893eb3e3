package guestimage_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/guestimage"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
)

const (
	// metalDiskSize is the machine's disk, bigger than the image so that the
	// first boot has a partition and filesystem to grow.
	metalDiskSize = 3 << 30
	metalHostname = "probe-metal"
	// metalCPUs and metalMemoryMiB size the machine, for the facts libvirt
	// reports about it.
	metalCPUs      = 2
	metalMemoryMiB = 1024
	// kvmTimeout bounds the libvirt checks after login: libvirtd starts on
	// its socket's first connection and probes QEMU, all under TCG.
	kvmTimeout = 4 * time.Minute
	// partStart is the first sector of the image's root partition (1 MiB).
	partStart = 2048
)

// TestMetalBootSSH writes the bare-metal image to a bigger disk as a deploy
// does and boots a machine from that disk alone, the way a small server
// boots: BIOS (SeaBIOS), GRUB from the MBR, the kernel from the ext4
// partition, the disk on an AHCI controller and an Intel e1000e NIC (drivers
// the VM image does not carry). cloud-init gets its seed from the NoCloud URL
// in the SMBIOS serial number. The test logs in over SSH with a key from the
// user-data, pinning the host keys the machine printed on its console, and
// checks that the partition and filesystem grew to the disk. The machine is
// a KVM host: the provisioner's way in, qemu+ssh:// as the default user with
// the pinned host key, reads its CPUs, memory and the active storage pool
// "default".
func TestMetalBootSSH(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" not found (apt-get install --no-install-recommends qemu-system-x86 openssh-client)")
		}
	}
	img := guestimage.ForTest(t)
	if img.Metal == "" || img.MetalSHA256 == "" {
		t.Fatalf("image without metal disk: %+v", img)
	}

	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	start := time.Now()
	imageSize := writeImage(t, img.Metal, img.MetalSHA256, disk)
	t.Logf("metal image: %.1f MiB raw, written in %v", float64(imageSize)/(1<<20), time.Since(start).Round(time.Millisecond))
	checkLayout(t, disk, imageSize)
	if err := os.Truncate(disk, metalDiskSize); err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(dir, "customer_key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "customer", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	meta := newMetadata(map[string]string{
		"/meta-data":   "instance-id: iid-" + metalHostname + "\nlocal-hostname: " + metalHostname + "\n",
		"/user-data":   "#cloud-config\nssh_authorized_keys:\n  - " + strings.TrimSpace(string(pub)) + "\n",
		"/vendor-data": "",
	})
	srv := httptest.NewServer(meta)
	t.Cleanup(srv.Close)
	_, httpPort, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	sshPort := freePort(t)
	serial := filepath.Join(dir, "serial.log")
	qemu := exec.Command("qemu-system-x86_64",
		"-accel", "tcg", "-machine", "q35", "-smp", strconv.Itoa(metalCPUs), "-m", strconv.Itoa(metalMemoryMiB),
		"-nodefaults", "-display", "none", "-no-reboot",
		// The only disk, on q35's built-in AHCI controller; no -kernel: the
		// BIOS boots whatever the disk holds.
		"-drive", "file="+disk+",if=none,id=d0,format=raw",
		"-device", "ide-hd,drive=d0,bus=ide.0",
		// QEMU's user network reaches the host's loopback at 10.0.2.2.
		"-smbios", "type=1,serial=ds=nocloud-net;s=http://10.0.2.2:"+httpPort+"/",
		"-device", "virtio-rng-pci",
		// The machine takes its address by DHCP (10.0.2.15, the forward's default).
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", sshPort),
		"-device", "e1000e,netdev=n0,mac="+guestMAC,
		"-serial", "file:"+serial,
	)
	sshRun, got, keys := bootLogin(t, qemu, serial, dir, sshPort, key)
	ctx, stop := context.WithTimeout(t.Context(), bootTimeout)
	defer stop()
	if got != metalHostname {
		t.Fatalf("ssh %s@machine hostname printed %q, want %q", loginUser, got, metalHostname)
	}

	// cloud-init grows the partition (growpart) and the filesystem
	// (resize_rootfs) in its init stage, before it writes the host keys.
	out, err := sshRun(ctx, "findmnt -n -o SOURCE /; df -B1 --output=size / | tail -n 1; cloud-init status")
	if err != nil {
		t.Fatalf("ssh checks: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 {
		t.Fatalf("ssh checks printed %q", out)
	}
	if lines[0] != "/dev/sda1" {
		t.Errorf("root filesystem on %q, want /dev/sda1", lines[0])
	}
	size, err := strconv.ParseInt(strings.TrimSpace(lines[1]), 10, 64)
	if err != nil {
		t.Fatalf("df size %q: %v", lines[1], err)
	}
	t.Logf("root filesystem: %.1f MiB on a %.1f MiB image and a %d MiB disk", float64(size)/(1<<20), float64(imageSize)/(1<<20), metalDiskSize>>20)
	if size <= imageSize {
		t.Errorf("root filesystem is %d bytes, no bigger than the %d-byte image: not grown", size, imageSize)
	}
	if !strings.Contains(out, "status: done") {
		t.Errorf("cloud-init did not finish:\n%s", out)
	}
	for _, path := range []string{"/meta-data", "/user-data"} {
		if meta.served(path) == 0 {
			t.Errorf("machine never fetched %s", path)
		}
	}

	kvmCtx, cancel := context.WithTimeout(t.Context(), kvmTimeout)
	defer cancel()
	checkKVMHost(kvmCtx, t, sshRun, kvmLogin{port: sshPort, key: key, hostKeys: keys}, size)
}

// kvmLogin is how the test reaches the machine the way the provisioner
// reaches a KVM host.
type kvmLogin struct {
	port     int
	key      string   // private key file of a key in the user-data
	hostKeys []string // "type base64" as printed on the console
}

// checkKVMHost checks the machine as a KVM host: the default user is in the
// libvirt group, libvirtd is enabled with its socket and answers with the
// pool "default" running, and hypervisor.Dial over qemu+ssh with the pinned
// host key reads the facts discovery records: the machine's CPUs and memory
// and the pool on its root filesystem of rootSize bytes.
func checkKVMHost(ctx context.Context, t *testing.T, sshRun func(context.Context, string) (string, error), login kvmLogin, rootSize int64) {
	remote := func(command string) string {
		t.Helper()
		out, err := sshRun(ctx, command)
		if err != nil {
			t.Fatalf("ssh %s: %v: %s", command, err, out)
		}
		return strings.TrimSpace(out)
	}
	if groups := strings.Fields(remote("id -nG")); !slices.Contains(groups, "libvirt") || !slices.Contains(groups, "sudo") {
		t.Errorf("%s is in groups %v, want libvirt and sudo among them", loginUser, groups)
	}
	if out := remote("systemctl is-enabled libvirtd.service libvirtd.socket; systemctl is-active libvirtd.socket"); out != "enabled\nenabled\nactive" {
		t.Errorf("libvirtd.service, libvirtd.socket: %q, want both enabled and the socket active", out)
	}
	if out := remote("sudo -n sshd -T"); !slices.Contains(strings.Split(out, "\n"), "allowstreamlocalforwarding yes") {
		t.Errorf("sshd does not allow streamlocal forwarding:\n%s", out)
	}
	start := time.Now()
	out := remote("virsh -c qemu:///system pool-info default")
	t.Logf("virsh pool-info default: %v", time.Since(start).Round(time.Millisecond))
	info := map[string]string{}
	for l := range strings.Lines(out) {
		if k, v, ok := strings.Cut(l, ":"); ok {
			info[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for k, want := range map[string]string{"Name": "default", "State": "running", "Autostart": "yes"} {
		if info[k] != want {
			t.Errorf("virsh pool-info default: %s %q, want %q:\n%s", k, info[k], want, out)
		}
	}
	memKiB, err := strconv.ParseInt(remote("awk '/^MemTotal:/ {print $2}' /proc/meminfo"), 10, 64)
	if err != nil {
		t.Fatalf("MemTotal: %v", err)
	}

	// The provisioner's path: SSH as the default user with its key, the host
	// key pinned, libvirtd's socket through a direct-streamlocal channel.
	pem, err := os.ReadFile(login.key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	var hostKey string
	for _, k := range login.hostKeys {
		if strings.HasPrefix(k, ssh.KeyAlgoED25519+" ") {
			hostKey = k
		}
	}
	if hostKey == "" {
		t.Fatalf("no ed25519 host key among %v", login.hostKeys)
	}
	start = time.Now()
	conn, err := hypervisor.Dial(ctx, hypervisor.Config{
		URI:     fmt.Sprintf("qemu+ssh://%s@127.0.0.1:%d/system", loginUser, login.port),
		HostKey: hostKey,
		Signer:  signer,
		Timeout: kvmTimeout,
	})
	if err != nil {
		t.Fatalf("dial the machine's libvirt: %v", err)
	}
	defer conn.Close()
	if conn.HostKey() != hostKey {
		t.Errorf("connection's host key %q, pinned %q", conn.HostKey(), hostKey)
	}
	facts, err := conn.Facts(ctx)
	if err != nil {
		t.Fatalf("facts: %v", err)
	}
	t.Logf("qemu+ssh dial and facts: %v: %+v", time.Since(start).Round(time.Millisecond), facts)
	if facts.Threads != metalCPUs {
		t.Errorf("libvirt reports %d CPUs, the machine has %d", facts.Threads, metalCPUs)
	}
	// libvirt reports MemTotal: the machine's memory less what the kernel
	// keeps for itself.
	if want := memKiB / 1024; facts.MemoryMiB != want || facts.MemoryMiB > metalMemoryMiB || facts.MemoryMiB < metalMemoryMiB*3/4 {
		t.Errorf("libvirt reports %d MiB of memory, the machine has MemTotal %d MiB of %d MiB", facts.MemoryMiB, want, metalMemoryMiB)
	}
	if facts.Arch != "x86_64" {
		t.Errorf("libvirt reports architecture %q", facts.Arch)
	}
	i := slices.IndexFunc(facts.Pools, func(p hypervisor.PoolFacts) bool { return p.Name == "default" })
	if i < 0 {
		t.Fatalf("storage pool default is not active; active pools: %+v", facts.Pools)
	}
	pool := facts.Pools[i]
	if pool.Path != "/var/lib/libvirt/images" {
		t.Errorf("pool default at %q, want /var/lib/libvirt/images", pool.Path)
	}
	if want := rootSize >> 30; pool.CapacityGiB != want || pool.AvailableGiB <= 0 {
		t.Errorf("pool default: %d GiB, %d GiB available; want the root filesystem's %d GiB with space free", pool.CapacityGiB, pool.AvailableGiB, want)
	}
}

// TestImagePackages checks the package lists of a build: the metal system
// is the VM system's package set plus the KVM host's packages, which the VM
// system lacks.
func TestImagePackages(t *testing.T) {
	img := guestimage.ForTest(t)
	vm := readPackages(t, filepath.Join(img.Dir, "packages.txt"))
	metal := readPackages(t, filepath.Join(img.Dir, "metal-packages.txt"))
	for _, p := range []string{"libvirt-daemon-system", "libvirt-daemon-driver-qemu", "libvirt-clients", "qemu-system-x86"} {
		if v, ok := vm[p]; ok {
			t.Errorf("VM image has %s %s", p, v)
		}
		if _, ok := metal[p]; !ok {
			t.Errorf("metal image lacks %s", p)
		}
	}
	for p, v := range vm {
		if metal[p] != v {
			t.Errorf("VM image has %s %s, metal image %q", p, v, metal[p])
		}
		if strings.HasPrefix(p, "libvirt") || strings.HasPrefix(p, "qemu-system") {
			t.Errorf("VM image has %s %s", p, v)
		}
	}
	t.Logf("%d packages in the VM image, %d in the metal image", len(vm), len(metal))
}

// readPackages reads a build's "package version" list.
func readPackages(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]string{}
	for line := range strings.Lines(string(b)) {
		name, version, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			t.Fatalf("%s: line %q", path, line)
		}
		pkgs[name] = version
	}
	if len(pkgs) == 0 {
		t.Fatalf("%s lists no packages", path)
	}
	return pkgs
}

// writeImage decompresses the gzip image at src into the raw file dst as a
// deploy writes it to a disk, leaving runs of zeros as holes, checks the
// compressed bytes against wantSHA256 and returns the raw size.
func writeImage(t *testing.T, src, wantSHA256, dst string) int64 {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(bufio.NewReaderSize(f, 1<<20), h))
	if err != nil {
		t.Fatalf("metal image: %v", err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	const block = 64 << 10
	buf := make([]byte, 1<<20)
	zero := make([]byte, block)
	var size int64
	for {
		n, rerr := io.ReadFull(zr, buf)
		for off := 0; off < n; off += block {
			b := buf[off:min(off+block, n)]
			if bytes.Equal(b, zero[:len(b)]) {
				continue
			}
			if _, err := out.WriteAt(b, size+int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		size += int64(n)
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			t.Fatalf("metal image: %v", rerr)
		}
	}
	if err := zr.Close(); err != nil {
		t.Fatalf("metal image: %v", err)
	}
	// The gzip reader stops at the end of the stream; hash what follows too.
	if _, err := io.Copy(io.Discard, io.TeeReader(f, h)); err != nil {
		t.Fatal(err)
	}
	if err := out.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA256 {
		t.Fatalf("metal image sha256 %s, want %s", got, wantSHA256)
	}
	if size%512 != 0 || size <= partStart*512 {
		t.Fatalf("metal image is %d bytes", size)
	}
	return size
}

// checkLayout checks the raw image's MBR (boot code, one bootable Linux
// partition from sector 2048 to the end), that GRUB's core image follows it,
// and the ext4 filesystem labelled root in the partition.
func checkLayout(t *testing.T, disk string, size int64) {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 2*512)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	mbr := head[:512]
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Fatalf("no MBR signature: % x", mbr[510:])
	}
	if bytes.Equal(mbr[:440], make([]byte, 440)) {
		t.Error("MBR has no boot code")
	}
	if bytes.Equal(head[512:], make([]byte, 512)) {
		t.Error("sector 1 (GRUB's core image) is empty")
	}
	type entry struct {
		status, kind  byte
		start, length uint32
	}
	var parts []entry
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		parts = append(parts, entry{e[0], e[4], binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])})
	}
	want := []entry{{0x80, 0x83, partStart, uint32(size/512 - partStart)}, {}, {}, {}}
	for i := range want {
		if parts[i] != want[i] {
			t.Errorf("partition %d: %+v, want %+v", i+1, parts[i], want[i])
		}
	}
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, partStart*512+1024); err != nil {
		t.Fatal(err)
	}
	if magic := binary.LittleEndian.Uint16(sb[0x38:]); magic != 0xef53 {
		t.Fatalf("partition 1 holds no ext4 filesystem (magic %#x)", magic)
	}
	if label := string(bytes.TrimRight(sb[0x78:0x88], "\x00")); label != "root" {
		t.Errorf("filesystem label %q, want root", label)
	}
	blocks := int64(binary.LittleEndian.Uint32(sb[0x04:])) | int64(binary.LittleEndian.Uint32(sb[0x150:]))<<32
	blockSize := int64(1024) << binary.LittleEndian.Uint32(sb[0x18:])
	if fsSize := blocks * blockSize; fsSize != size-partStart*512 {
		t.Errorf("filesystem is %d bytes, partition %d", fsSize, size-partStart*512)
	}
}
