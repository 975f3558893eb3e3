package guestimage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/guestimage"
)

const (
	// bootTimeout bounds boot to a working SSH login under TCG (measured about
	// a minute on 2 cores).
	bootTimeout = 4 * time.Minute
	guestMAC    = "52:54:00:12:34:56"
	// guestAddr is a static address inside QEMU's user network (10.0.2.0/24,
	// gateway 10.0.2.2, DNS 10.0.2.3) that its DHCP would never hand out, so a
	// working SSH login proves the static configuration was applied.
	guestAddr = "10.0.2.20"
	hostname  = "probe-vm"
	// loginUser is cloud-init's default user on Debian, the one customers use.
	loginUser = "debian"
)

// networkConfig is the static form the provisioner sends: network config v2,
// the NIC matched by MAC and named eth0.
const networkConfig = `version: 2
ethernets:
  eth0:
    match:
      macaddress: "` + guestMAC + `"
    set-name: eth0
    addresses: [` + guestAddr + `/24]
    gateway4: 10.0.2.2
    nameservers:
      addresses: [10.0.2.3]
`

// TestBootSSH boots the real image under QEMU (TCG, direct kernel boot, user
// networking) with NoCloud metadata served over HTTP and a static network
// configuration on the kernel command line, then logs in over SSH with a key
// from the user-data, pinning the host keys the guest printed on its console.
func TestBootSSH(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" not found (apt-get install --no-install-recommends qemu-system-x86 qemu-utils openssh-client)")
		}
	}
	start := time.Now()
	img := guestimage.ForTest(t)
	t.Logf("guest image ready in %v (cold build or cache): %s", time.Since(start).Round(time.Millisecond), img.Dir)
	start = time.Now()
	again, err := guestimage.Build(t.Context(), guestimage.CacheDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached Build took %v", time.Since(start).Round(time.Microsecond))
	if again != img {
		t.Fatalf("cached image %+v differs from %+v", again, img)
	}
	start = time.Now()
	if err := img.Verify(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Verify took %v", time.Since(start).Round(time.Millisecond))
	for _, f := range []string{img.Disk, img.Kernel, img.Initrd} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.1f MiB", filepath.Base(f), float64(fi.Size())/(1<<20))
	}

	dir := t.TempDir()
	key := filepath.Join(dir, "customer_key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "customer", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "vm.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img.Disk, disk, "3G")

	meta := newMetadata(map[string]string{
		"/meta-data": "instance-id: iid-" + hostname + "\nlocal-hostname: " + hostname + "\n",
		"/user-data": "#cloud-config\nssh_authorized_keys:\n  - " + strings.TrimSpace(string(pub)) + "\n",
		// Without vendor-data cloud-init retries it for about 10 s.
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
	appendLine := strings.Join([]string{
		"root=/dev/vda", "console=ttyS0", "panic=-1",
		// QEMU's user network reaches the host's loopback at 10.0.2.2.
		"ds=nocloud-net;s=http://10.0.2.2:" + httpPort + "/",
		"network-config=" + gzipBase64(t, networkConfig),
	}, " ")
	qemu := exec.Command("qemu-system-x86_64",
		"-accel", "tcg", "-machine", "pc", "-smp", "2", "-m", "1024",
		"-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", appendLine,
		"-drive", "file="+disk+",if=virtio,format=qcow2",
		"-device", "virtio-rng-pci",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-%s:22", sshPort, guestAddr),
		"-device", "virtio-net-pci,netdev=n0,mac="+guestMAC,
		"-serial", "file:"+serial,
	)
	ssh, got, _ := bootLogin(t, qemu, serial, dir, sshPort, key)
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	if got != hostname {
		t.Fatalf("ssh %s@guest hostname printed %q, want %q", loginUser, got, hostname)
	}

	out, err := ssh(ctx, "ip -4 -o addr show dev eth0; cat /etc/resolv.conf; cloud-init status; sudo -n true && echo sudo-ok")
	if err != nil {
		t.Fatalf("ssh checks: %v: %s", err, out)
	}
	for _, want := range []string{"inet " + guestAddr + "/24", "nameserver 10.0.2.3", "status: done", "sudo-ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("guest state lacks %q:\n%s", want, out)
		}
	}
	// The hypervisor belongs to the bare-metal image only.
	out, err = ssh(ctx, "getent group libvirt libvirt-qemu; getent passwd libvirt-qemu; command -v libvirtd virsh qemu-system-x86_64; true")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("VM image holds libvirt or QEMU (%v):\n%s", err, out)
	}
	for _, path := range []string{"/meta-data", "/user-data"} {
		if meta.served(path) == 0 {
			t.Errorf("guest never fetched %s", path)
		}
	}
}

func unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func gzipBase64(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// waitHostKeys polls the serial log until cloud-init's
// "-----BEGIN SSH HOST KEY KEYS-----" block is complete and returns its
// "type base64" pairs.
func waitHostKeys(ctx context.Context, t *testing.T, serial string, exited <-chan error) []string {
	t.Helper()
	for {
		if keys := guestimage.HostKeys(serial); len(keys) > 0 {
			return keys
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no SSH host keys on the serial console within %v", bootTimeout)
		case err := <-exited:
			t.Fatalf("qemu exited: %v", err)
		case <-time.After(time.Second):
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metadata serves fixed NoCloud files and counts requests per path.
type metadata struct {
	files map[string]string
	mu    sync.Mutex
	hits  map[string]int
}

func newMetadata(files map[string]string) *metadata {
	return &metadata{files: files, hits: map[string]int{}}
}

func (m *metadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.hits[r.URL.Path]++
	m.mu.Unlock()
	body, ok := m.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(body))
}

func (m *metadata) served(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[path]
}

// bootLogin starts qemu, pins the SSH host keys cloud-init prints on the
// serial console, and waits until loginUser can log in with key; it
// returns a command runner for the guest, what `hostname` printed and the
// pinned host keys (authorized_keys form). The guest is killed when the
// test ends; on failure its console tail is logged.
func bootLogin(t *testing.T, qemu *exec.Cmd, serial, dir string, sshPort int, key string) (func(ctx context.Context, command string) (string, error), string, []string) {
	t.Helper()
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

	// cloud-init prints the host keys it generated on the console; pinning them
	// lets ssh run with StrictHostKeyChecking=yes.
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
			"-p", fmt.Sprint(sshPort), loginUser+"@127.0.0.1", command)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for {
		out, err := ssh(ctx, "hostname")
		if err == nil {
			t.Logf("boot → SSH ready: %v", time.Since(bootStart).Round(time.Second))
			return ssh, strings.TrimSpace(out), keys
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
}
