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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/guestimage"
)

const (
	// metalDiskSize is the machine's disk, bigger than the image so that the
	// first boot has a partition and filesystem to grow.
	metalDiskSize = 3 << 30
	metalHostname = "probe-metal"
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
// checks that the partition and filesystem grew to the disk.
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
		"-accel", "tcg", "-machine", "q35", "-smp", "2", "-m", "1024",
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
	var qemuOut bytes.Buffer
	qemu.Stdout, qemu.Stderr = &qemuOut, &qemuOut
	bootStart := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- qemu.Wait() }()
	t.Cleanup(func() {
		_ = qemu.Process.Kill()
		<-exited
	})
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("qemu output: %s\nserial console (tail):\n%s", qemuOut.String(), tail(string(b), 80))
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	keys := waitHostKeys(ctx, t, serial, exited)
	t.Logf("boot → host keys on console: %v", time.Since(bootStart).Round(time.Second))
	knownHosts := filepath.Join(dir, "known_hosts")
	var kh strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&kh, "[127.0.0.1]:%d %s\n", sshPort, k)
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := func(ctx context.Context, command string) (string, error) {
		cmd := exec.CommandContext(ctx, "ssh", "-i", key, "-F", "/dev/null",
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile="+knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
			"-p", strconv.Itoa(sshPort), loginUser+"@127.0.0.1", command)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var got string
	for {
		out, err := ssh(ctx, "hostname")
		if err == nil {
			got = strings.TrimSpace(out)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no SSH login within %v: %v: %s", bootTimeout, err, out)
		}
		select {
		case err := <-exited:
			t.Fatalf("qemu exited: %v", err)
		case <-time.After(2 * time.Second):
		}
	}
	t.Logf("boot → SSH ready: %v", time.Since(bootStart).Round(time.Second))
	if got != metalHostname {
		t.Fatalf("ssh %s@machine hostname printed %q, want %q", loginUser, got, metalHostname)
	}

	// cloud-init grows the partition (growpart) and the filesystem
	// (resize_rootfs) in its init stage, before it writes the host keys.
	out, err := ssh(ctx, "findmnt -n -o SOURCE /; df -B1 --output=size / | tail -n 1; cloud-init status")
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
