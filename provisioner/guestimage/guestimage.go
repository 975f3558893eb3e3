// Package guestimage builds the small Debian image that customers' VMs boot:
// an ext4 root filesystem with cloud-init and openssh-server, plus the kernel
// and initrd for direct kernel boot. The same build makes the bare-metal image
// of that system: a gzip-compressed raw disk that boots by itself through GRUB
// and is a KVM host, with libvirt and QEMU (which the VM image lacks). It is
// built offline from Debian packages by the embedded build.sh and cached by
// the script's hash, because a build takes minutes.
//
// Customers log in as cloud-init's default Debian user, "debian" (passwordless
// sudo), with the keys given as ssh_authorized_keys in the NoCloud user-data.
// The image reads NoCloud seeds only: a cidata ISO, or
// ds=nocloud-net;s=http://<metadata>/ on the kernel command line. cloud-init
// 22.4 fetches only meta-data, user-data and vendor-data over HTTP, so a static
// network configuration must come on the kernel command line as
// network-config=<base64 of (optionally gzipped) v1 or v2 YAML>, or as the
// network-config file of a cidata ISO; without one the VM uses DHCP on its
// first NIC. Interfaces are matched by MAC address and renamed with set-name.
//
// The bare-metal image reads the same seeds (on a machine, ds=nocloud-net in
// the SMBIOS system serial number, or a seed written into its filesystem) and
// on first boot grows its partition and filesystem to the whole disk. There
// the default user is also in the libvirt group, so the provisioner manages
// the machine as a KVM host at qemu+ssh://debian@<address>/system.
package guestimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed build.sh
var buildScript []byte

// Files of a complete build, inside Image.Dir.
const (
	diskFile   = "base.qcow2"
	kernelFile = "vmlinuz"
	initrdFile = "initrd.img"
	metalFile  = "metal.img.gz"
	sumsFile   = "SHA256SUMS"
	logFile    = "build.log"
)

const (
	// keyLen is how many hex digits of the script's hash name a cache entry.
	keyLen = 16
	// lockPoll is how often a waiting builder retries the cache lock.
	lockPoll = time.Second
	// killDelay is how long a cancelled build may take to clean up after SIGTERM.
	killDelay = 30 * time.Second
	// logTail is how many lines of build output a failure reports.
	logTail = 40
)

// Image is a built guest image. Per-VM disks are copy-on-write overlays of
// Disk (qemu-img create -f qcow2 -F qcow2 -b Disk vm.qcow2 SIZE); boot them with
// Kernel, Initrd and root=/dev/vda (or root=LABEL=root) console=ttyS0.
//
// Metal is for machines: decompressed onto the start of a disk at least as big
// as the image, it boots from that disk by BIOS. It holds an MBR with GRUB and
// one partition from 1 MiB to the image's end with the ext4 filesystem
// labelled root: the same system plus the kernel and initrd in /boot, GRUB's
// configuration in /boot/grub/grub.cfg (console on tty0 and ttyS0 at 115200)
// and the drivers of server NICs and storage controllers. cloud-init grows the
// partition and filesystem to the disk on first boot (an MBR partition reaches
// at most 2 TiB).
//
// The Metal system is a KVM host: libvirt-daemon-system with the QEMU driver
// and qemu-system-x86; libvirtd starts at boot and, after it exits when idle,
// again through its sockets; the default user "debian" reaches
// /var/run/libvirt/libvirt-sock over SSH as a member of the libvirt group; the
// directory storage pool "default" on /var/lib/libvirt/images is autostarted.
// libvirt's NAT network "default" is defined but not started: VMs attach to a
// host bridge. Package lists of both systems are in Dir: packages.txt (VM) and
// metal-packages.txt.
type Image struct {
	Dir    string // cache directory holding the files below
	Disk   string // qcow2 of an ext4 filesystem without partition table, 2 GiB virtual size
	Kernel string
	Initrd string
	SHA256 string // hex SHA-256 of Disk
	// Metal is the gzip-compressed raw disk image for bare-metal machines.
	Metal string
	// MetalSHA256 is the hex SHA-256 of the compressed file Metal.
	MetalSHA256 string
}

// CacheDir is where images are cached: $FIBRIX_IMAGE_CACHE, else
// $XDG_CACHE_HOME/fibrix/images, else ~/.cache/fibrix/images.
func CacheDir() string {
	if d := os.Getenv("FIBRIX_IMAGE_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "fibrix", "images")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "fibrix", "images")
	}
	return filepath.Join(os.TempDir(), "fibrix-images")
}

// Build returns the image built by the embedded build.sh, from cacheDir when an
// earlier build of the same script completed, else by running the script (as
// root; minutes). Concurrent callers, also in other processes, wait for one
// build; an interrupted build leaves no entry behind.
func Build(ctx context.Context, cacheDir string, log *slog.Logger) (Image, error) {
	return build(ctx, cacheDir, buildScript, log)
}

func build(ctx context.Context, cacheDir string, script []byte, log *slog.Logger) (Image, error) {
	sum := sha256.Sum256(script)
	key := hex.EncodeToString(sum[:])[:keyLen]
	dir := filepath.Join(cacheDir, key)
	log = log.With("image", key)
	start := time.Now()

	if img, err := load(dir); err == nil {
		log.Info("guest image cached", "dir", dir, "took", time.Since(start))
		return img, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("create image cache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(cacheDir, key+".lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	// Another process may have finished the build while we waited.
	if img, err := load(dir); err == nil {
		log.Info("guest image built by another process", "dir", dir, "took", time.Since(start))
		return img, nil
	}
	// Holding the lock, any temporary directory of this key is a dead build's.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, key+".tmp-*"))
	for _, s := range stale {
		// build.sh mounts only inside a private namespace, but a mount left under a
		// chroot would make RemoveAll delete the host's /dev or /sys.
		if m := mountsUnder(s); len(m) > 0 {
			return Image{}, fmt.Errorf("stale build %s still has mounts %v: unmount them", s, m)
		}
		if err := os.RemoveAll(s); err != nil {
			return Image{}, fmt.Errorf("remove stale build: %w", err)
		}
	}
	_ = os.RemoveAll(dir) // incomplete leftovers only: load failed

	tmp, err := os.MkdirTemp(cacheDir, key+".tmp-")
	if err != nil {
		return Image{}, fmt.Errorf("create build directory: %w", err)
	}
	// QEMU run by libvirt as its own user must read the base disk through this
	// directory; MkdirTemp creates it 0700.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Image{}, fmt.Errorf("create build directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	log.Info("building guest image", "dir", dir)
	if err := run(ctx, script, tmp, log); err != nil {
		return Image{}, err
	}
	if _, err := load(tmp); err != nil {
		return Image{}, fmt.Errorf("check built image: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return Image{}, fmt.Errorf("publish built image: %w", err)
	}
	done = true
	img, err := load(dir)
	if err != nil {
		return Image{}, err
	}
	log.Info("guest image built", "dir", dir, "took", time.Since(start))
	return img, nil
}

// load returns the image in dir when its files are all there and match
// SHA256SUMS, the file build.sh writes last.
func load(dir string) (Image, error) {
	sums, err := os.ReadFile(filepath.Join(dir, sumsFile))
	if err != nil {
		return Image{}, fmt.Errorf("read checksums: %w", err)
	}
	want := map[string]string{}
	for line := range strings.Lines(string(sums)) {
		f := strings.Fields(line)
		if len(f) == 2 {
			want[strings.TrimPrefix(f[1], "*")] = f[0]
		}
	}
	img := Image{
		Dir:         dir,
		Disk:        filepath.Join(dir, diskFile),
		Kernel:      filepath.Join(dir, kernelFile),
		Initrd:      filepath.Join(dir, initrdFile),
		SHA256:      want[diskFile],
		Metal:       filepath.Join(dir, metalFile),
		MetalSHA256: want[metalFile],
	}
	for _, name := range []string{diskFile, kernelFile, initrdFile, metalFile} {
		if want[name] == "" {
			return Image{}, fmt.Errorf("checksums lack %s", name)
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return Image{}, fmt.Errorf("image file: %w", err)
		}
		if fi.Size() == 0 {
			return Image{}, fmt.Errorf("image file %s is empty", name)
		}
	}
	return img, nil
}

// Verify recomputes the SHA-256 of the image's files and compares them with
// its SHA256SUMS; a cache entry that passes load can still have rotted on disk.
func (img Image) Verify() error {
	sums, err := os.ReadFile(filepath.Join(img.Dir, sumsFile))
	if err != nil {
		return fmt.Errorf("read checksums: %w", err)
	}
	for line := range strings.Lines(string(sums)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		name := strings.TrimPrefix(f[1], "*")
		got, err := fileSHA256(filepath.Join(img.Dir, name))
		if err != nil {
			return err
		}
		if got != f[0] {
			return fmt.Errorf("image file %s: sha256 %s, want %s", name, got, f[0])
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash image file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash image file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// mountsUnder lists mount points at or below dir (Linux; none elsewhere).
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// /proc/self/mounts escapes spaces and other bytes as octal.
		mp := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[1])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// lock takes an exclusive flock on path, polling so ctx can end the wait. The
// kernel drops the lock when the process dies, so a killed build never blocks
// the next one.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open image cache lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock image cache: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for image cache lock: %w", context.Cause(ctx))
		case <-time.After(lockPoll):
		}
	}
}

// run executes script with out as its argument, logging its output at debug
// level and keeping it in out/build.log. Cancelling ctx terminates the whole
// process group (mmdebstrap, dpkg, mke2fs...).
func run(ctx context.Context, script []byte, out string, log *slog.Logger) error {
	scriptFile := out + ".sh"
	if err := os.WriteFile(scriptFile, script, 0o755); err != nil {
		return fmt.Errorf("write build script: %w", err)
	}
	defer os.Remove(scriptFile)
	logf, err := os.Create(filepath.Join(out, logFile))
	if err != nil {
		return fmt.Errorf("create build log: %w", err)
	}
	defer logf.Close()

	cmd := exec.CommandContext(ctx, "/bin/sh", scriptFile, out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = killDelay
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw

	tail := make([]string, 0, logTail)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			log.Debug("build", "line", line)
			if len(tail) == logTail {
				tail = tail[1:]
			}
			tail = append(tail, line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err = cmd.Run()
	pw.Close()
	<-scanned
	if err != nil {
		var b bytes.Buffer
		for _, l := range tail {
			b.WriteString("\n\t")
			b.WriteString(l)
		}
		return fmt.Errorf("build guest image: %w; last output:%s", err, b.String())
	}
	return nil
}
