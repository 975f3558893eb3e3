// Package libvirttest gives tests a running libvirtd: Ensure starts the
// daemons (without systemd, as on the lab machines and in CI) when they are
// not running yet, and returns the path of the daemon's unix socket.
//
//	func TestSomething(t *testing.T) {
//		sock := libvirttest.Ensure(t)
//		...
//	}
//
// The daemon is left running afterwards: many test binaries share it, and
// starting it costs a second or two. Ensure is safe when several test
// binaries call it at once; a lock file serialises the start.
//
// When /usr/sbin/libvirtd is absent Ensure skips the test, or fails it when
// the environment variable CI is non-empty. Starting the daemons needs root.
package libvirttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// Socket is the read-write socket of the system libvirtd.
	Socket = "/var/run/libvirt/libvirt-sock"

	libvirtd = "/usr/sbin/libvirtd"
	virtlogd = "/usr/sbin/virtlogd"
	logDir   = "/var/log/libvirt"
	// lockName, in /run/lock (or the temporary directory), serialises starts
	// across test binaries.
	lockName = "fibrix-libvirttest.lock"
	// qemuUser and its groups are what Debian's libvirt runs QEMU as; the
	// libvirt-daemon-system package, which we do not install (it pulls
	// systemd and a NAT network), would have created them.
	qemuUser = "libvirt-qemu"
	// qemuGroup is qemuUser's primary group, qemuOtherGroup its other one.
	qemuGroup      = "kvm"
	qemuOtherGroup = "libvirt-qemu"
	// startTimeout bounds waiting for a freshly started daemon to answer.
	startTimeout = 30 * time.Second
	// probeTimeout bounds one probe of the socket.
	probeTimeout = 5 * time.Second

	installHint = "install libvirt (Debian: apt-get install --no-install-recommends " +
		"libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils)"
)

// Ensure returns the path of a libvirtd unix socket that answers RPCs,
// starting virtlogd and libvirtd first when needed.
func Ensure(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(libvirtd); err != nil {
		msg := fmt.Sprintf("libvirtd not found at %s: %s", libvirtd, installHint)
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	if err := ensure(); err != nil {
		t.Fatalf("libvirttest: %v", err)
	}
	return Socket
}

func ensure() error {
	if err := kvmAccess(); err != nil {
		return err
	}
	if probe(Socket) == nil {
		return nil
	}
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Another binary may have started it while we waited for the lock.
	if probe(Socket) == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("libvirtd is not running and starting it needs root")
	}
	if err := ensureAccounts(); err != nil {
		return err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	if !running("virtlogd") {
		if err := daemon(virtlogd, "-d"); err != nil {
			return err
		}
	}
	if !running("libvirtd") {
		if err := daemon(libvirtd, "-d"); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(startTimeout)
	for {
		err := probe(Socket)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd did not answer on %s within %s (see %s/libvirtd.log): %w",
				Socket, startTimeout, logDir, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lock takes an exclusive lock on a file shared by all test binaries.
func lock() (func(), error) {
	dir := "/run/lock"
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func ensureAccounts() error {
	for _, g := range []string{qemuGroup, qemuOtherGroup} {
		if _, err := user.LookupGroup(g); err == nil {
			continue
		}
		if out, err := exec.Command("groupadd", "--system", g).CombinedOutput(); err != nil {
			return fmt.Errorf("groupadd %s: %w: %s", g, err, bytes.TrimSpace(out))
		}
	}
	if _, err := user.Lookup(qemuUser); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home",
		"--home-dir", "/var/lib/libvirt", "--shell", "/usr/sbin/nologin",
		"--gid", qemuGroup, "--groups", qemuOtherGroup,
		qemuUser).CombinedOutput()
	if err != nil {
		return fmt.Errorf("useradd %s: %w: %s", qemuUser, err, bytes.TrimSpace(out))
	}
	return nil
}

// kvmAccess gives the kvm group read-write access to /dev/kvm, as Debian's
// udev rules do on a normal host. Without it libvirt finds its cached QEMU
// capabilities (probed with KVM) invalid on every domain definition and
// probes QEMU again, which takes 30 s or more. Whether domains use KVM is
// still decided by a probe boot, not by this.
func kvmAccess() error {
	const dev = "/dev/kvm"
	fi, err := os.Stat(dev)
	if err != nil || os.Geteuid() != 0 {
		return nil // no KVM, or not ours to change
	}
	g, err := user.LookupGroup(qemuGroup)
	if err != nil {
		if err := ensureAccounts(); err != nil {
			return err
		}
		if g, err = user.LookupGroup(qemuGroup); err != nil {
			return fmt.Errorf("look up group %s: %w", qemuGroup, err)
		}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Errorf("group %s: gid %q: %w", qemuGroup, g.Gid, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Gid) == gid && fi.Mode().Perm()&0o060 == 0o060 {
		return nil
	}
	if err := os.Chown(dev, 0, gid); err != nil {
		return fmt.Errorf("give group %s access to %s: %w", qemuGroup, dev, err)
	}
	if err := os.Chmod(dev, fi.Mode().Perm()|0o060); err != nil {
		return fmt.Errorf("give group %s access to %s: %w", qemuGroup, dev, err)
	}
	return nil
}

// running reports whether a process with this command name exists.
func running(comm string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == comm {
			return true
		}
	}
	return false
}

// daemon runs a daemon that forks into the background itself. Its output
// goes nowhere: holding the test binary's stdout would keep go test waiting.
func daemon(path string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start %s: %w: %s", path, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// Wire constants of libvirt's RPC protocol (src/rpc/virnetprotocol.x and
// src/remote/remote_protocol.x); the probe speaks it directly so that this
// package needs no libvirt client library.
const (
	remoteProgram  = 0x20008086
	remoteVersion  = 1
	procAuthList   = 66
	msgTypeCall    = 0
	msgStatusOK    = 0
	rpcHeaderBytes = 4 + 6*4 // length word + header
)

// probe sends one harmless RPC (auth-list) and checks for a successful
// reply: a stale socket file or a daemon still initialising does not count.
func probe(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	req := make([]byte, rpcHeaderBytes)
	be := binary.BigEndian
	be.PutUint32(req[0:], rpcHeaderBytes)
	be.PutUint32(req[4:], remoteProgram)
	be.PutUint32(req[8:], remoteVersion)
	be.PutUint32(req[12:], procAuthList)
	be.PutUint32(req[16:], msgTypeCall)
	be.PutUint32(req[20:], 1) // serial
	be.PutUint32(req[24:], msgStatusOK)
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp := make([]byte, rpcHeaderBytes)
	if _, err := io.ReadFull(c, resp); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if p := be.Uint32(resp[4:]); p != remoteProgram {
		return fmt.Errorf("unexpected program %#x in reply", p)
	}
	if s := be.Uint32(resp[24:]); s != msgStatusOK {
		return fmt.Errorf("auth-list failed with status %d", s)
	}
	return nil
}
