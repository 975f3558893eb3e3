package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/guestimage"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// The guest network of the end-to-end test: a bridge on this machine with no
// uplink, so nothing the guest sends can leave it.
const (
	e2eBridge  = "fbxe2e0"
	e2eGateway = "10.213.77.1"
	e2eCIDR    = "10.213.77.0/24"
)

// api is a small JSON client for the running instance.
type api struct {
	t     *testing.T
	base  string
	token string
}

func (a api) call(method, path string, body, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+"/api/v1"+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, raw, err)
		}
	}
	if res.StatusCode >= 400 && out == nil {
		a.t.Logf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	return res.StatusCode
}

func (a api) must(method, path string, body, out any, want int) {
	a.t.Helper()
	var raw json.RawMessage
	if code := a.call(method, path, body, &raw); code != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatal(err)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	out := sh(t, "sha256sum", path)
	return strings.Fields(out)[0]
}

// e2eNetwork creates the guest bridge and a directory storage pool.
func e2eNetwork(t *testing.T) (pool, dir string) {
	t.Helper()
	_ = exec.Command("ip", "link", "del", e2eBridge).Run() // left over from a killed run
	sh(t, "ip", "link", "add", e2eBridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", e2eBridge).Run() })
	sh(t, "ip", "addr", "add", e2eGateway+"/24", "dev", e2eBridge)
	sh(t, "ip", "link", "set", e2eBridge, "up")

	dir, err := os.MkdirTemp("/var/tmp", "fibrix-e2e-pool-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pool = filepath.Base(dir)
	virsh := func(args ...string) { sh(t, "virsh", append([]string{"-c", "qemu:///system"}, args...)...) }
	virsh("pool-define-as", pool, "dir", "--target", dir)
	virsh("pool-start", pool)
	t.Cleanup(func() {
		_ = exec.Command("virsh", "-c", "qemu:///system", "pool-destroy", pool).Run()
		_ = exec.Command("virsh", "-c", "qemu:///system", "pool-undefine", pool).Run()
		_ = os.RemoveAll(dir)
	})
	return pool, dir
}

// domainType decides between KVM and software emulation by booting a probe
// guest under KVM, never by the mere presence of /dev/kvm.
func domainType(t *testing.T, kernel, dir string) string {
	t.Helper()
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	probeKernel := filepath.Join(dir, "probe-vmlinuz")
	if err := os.WriteFile(probeKernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	initrd := libvirttest.ProbeInitramfs(t, dir, hypervisor.ProbeMarker)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := hypervisor.Dial(ctx, hypervisor.Config{URI: "qemu:///system"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ok, why := c.ProbeKVM(ctx, probeKernel, initrd)
	if ok {
		t.Log("KVM works here: the guest runs under KVM")
		return hypervisor.TypeKVM
	}
	t.Logf("KVM does not work here (%v): the guest runs under software emulation", why)
	return hypervisor.TypeQEMU
}

// TestEndToEndBoot orders a VM through the API as a customer, lets the
// provisioner build it on the local libvirtd/QEMU, logs in over SSH with the
// customer's key, then deletes it and checks that nothing is left.
func TestEndToEndBoot(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "the end-to-end boot needs root (bridge, libvirtd)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	img := guestimage.ForTest(t)
	libvirttest.Ensure(t)
	pool, poolDir := e2eNetwork(t)
	kind := domainType(t, img.Kernel, poolDir)
	bin := buildBinary(t)
	dataDir := t.TempDir()
	gwPort := freeTCPPort(t)
	// A console log directory that does not exist yet, as on a freshly
	// installed host: discovery must make it before the VM starts.
	consoleDir := filepath.Join(t.TempDir(), "console-log", "qemu")
	in := serve(t, bin, dataDir, "--metadata-listen", e2eGateway+":0", "--domain-type", kind,
		"--ssh-gateway-listen", "127.0.0.1:"+gwPort,
		"--console-log-dir", consoleDir,
		"--watch-interval", "2s", "--metrics-interval", "5s")

	staff := api{t: t, base: in.URL}
	var sess struct{ Token string }
	staff.must("POST", "/auth/login", map[string]string{"email": in.Email, "password": in.Password}, &sess, 200)
	staff.token = sess.Token

	staff.must("POST", "/admin/images", map[string]any{
		"name": "debian-12-mini", "os": "Debian", "version": "12",
		"source_url": "file://" + img.Disk, "checksum": "sha256:" + fileSum(t, img.Disk),
		"kernel_url": "file://" + img.Kernel, "kernel_checksum": "sha256:" + fileSum(t, img.Kernel),
		"initrd_url": "file://" + img.Initrd, "initrd_checksum": "sha256:" + fileSum(t, img.Initrd),
	}, nil, 201)
	staff.must("POST", "/admin/subnets", map[string]any{"name": "e2e", "cidr": e2eCIDR, "gateway": e2eGateway,
		"dns_servers": []string{e2eGateway}, "range_start": "10.213.77.10", "range_end": "10.213.77.50"}, nil, 201)
	var host struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Error string `json:"last_error"`
	}
	staff.must("POST", "/admin/hosts", map[string]any{"name": "local", "uri": "qemu:///system",
		"storage_pool": pool, "bridge": e2eBridge}, &host, 201)
	deadline := time.Now().Add(60 * time.Second)
	for host.State != "ready" {
		if time.Now().After(deadline) {
			t.Fatalf("host not ready: %s %s", host.State, host.Error)
		}
		time.Sleep(500 * time.Millisecond)
		staff.must("GET", "/admin/hosts/"+host.ID, nil, &host, 200)
	}

	// The customer: sign up, upload a key made by ssh-keygen, order.
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "id_ed25519")
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "customer@e2e", "-f", key)
	pub, _ := os.ReadFile(key + ".pub")
	cust := api{t: t, base: in.URL}
	cust.must("POST", "/auth/signup", map[string]string{"tenant": "E2E Shop", "email": "owner@e2e.example", "password": "correct horse battery"}, &sess, 201)
	cust.token = sess.Token
	var k struct{ ID string }
	cust.must("POST", "/ssh-keys", map[string]string{"name": "laptop", "public_key": string(pub)}, &k, 201)
	start := time.Now()
	var vm struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		IP        string `json:"ip"`
		LastError string `json:"last_error"`
	}
	cust.must("POST", "/vms", map[string]any{"name": "e2e-web", "plan": "nano", "image": "debian-12-mini", "ssh_keys": []string{k.ID}}, &vm, 201)
	t.Cleanup(func() {
		// After a failure the guest may still run; leave nothing behind.
		_ = exec.Command("virsh", "-c", "qemu:///system", "destroy", "fibrix-"+vm.ID).Run()
		_ = exec.Command("virsh", "-c", "qemu:///system", "undefine", "fibrix-"+vm.ID).Run()
	})

	deadline = time.Now().Add(2 * time.Minute)
	for vm.State != "running" || vm.IP == "" {
		if vm.State == "error" || time.Now().After(deadline) {
			t.Fatalf("VM not running: %s %q", vm.State, vm.LastError)
		}
		time.Sleep(time.Second)
		cust.must("GET", "/vms/"+vm.ID, nil, &vm, 200)
	}
	running := time.Since(start)

	// Pin the guest's host keys from its console, then log in with the
	// customer's key.
	console := filepath.Join(consoleDir, "fibrix-"+vm.ID+".console.log")
	var hostKeys []string
	deadline = time.Now().Add(4 * time.Minute)
	for len(hostKeys) == 0 {
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(console)
			t.Fatalf("no SSH host keys on the console within 4 minutes:\n%s", lastLines(string(tail), 30))
		}
		time.Sleep(2 * time.Second)
		hostKeys = guestimage.HostKeys(console)
	}
	knownHosts := filepath.Join(keyDir, "known_hosts")
	var kh strings.Builder
	for _, hk := range hostKeys {
		fmt.Fprintf(&kh, "%s %s\n", vm.IP, hk)
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := guestSSH(key, knownHosts, vm.IP, "hostname", time.Until(deadline))
	if err != nil {
		t.Fatalf("ssh into the VM: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "e2e-web" {
		t.Errorf("hostname in the VM = %q, want e2e-web", got)
	}
	ready := time.Since(start)

	// The same login through the SSH gateway, by name, with ProxyJump: the
	// gateway authenticates the customer's key for the tenant and relays to
	// the VM's port 22; the VM session stays end-to-end encrypted.
	gwKey := gatewayHostKey(t, dataDir)
	sshConfig := filepath.Join(keyDir, "ssh_config")
	cfg := fmt.Sprintf(`Host gw
  HostName 127.0.0.1
  Port %s
  User e2e-shop
Host * !gw
  HostKeyAlias e2e-vm
Host *
  IdentityFile %s
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking yes
  UserKnownHostsFile %s
`, gwPort, key, knownHosts)
	if err := os.WriteFile(sshConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	kh.Reset()
	fmt.Fprintf(&kh, "[127.0.0.1]:%s %s\n", gwPort, gwKey)
	for _, hk := range hostKeys {
		fmt.Fprintf(&kh, "e2e-vm %s\n", hk)
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("ssh", "-F", sshConfig, "-J", "gw", "debian@e2e-web.e2e-shop.cloud.internal", "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "e2e-web" {
		t.Errorf("ssh through the gateway: %v\n%s", err, out)
	}

	// A customer port forward on the public address reaches the guest too.
	var fw struct {
		PublicPort int    `json:"public_port"`
		Address    string `json:"address"`
	}
	cust.must("POST", "/forwards", map[string]any{"vm": vm.ID, "target_port": 22}, &fw, 201)
	fwHosts := filepath.Join(keyDir, "known_hosts_forward")
	var fh strings.Builder
	for _, hk := range hostKeys {
		fmt.Fprintf(&fh, "[127.0.0.1]:%d %s\n", fw.PublicPort, hk)
	}
	if err := os.WriteFile(fwHosts, []byte(fh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, err = exec.Command("ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
			"-o", "UserKnownHostsFile="+fwHosts, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
			"-p", fmt.Sprint(fw.PublicPort), "debian@127.0.0.1", "hostname").CombinedOutput()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || strings.TrimSpace(string(out)) != "e2e-web" {
		t.Errorf("ssh through the port forward %s: %v\n%s", fw.Address, err, out)
	}
	t.Logf("order → running: %s; order → SSH login with the customer's key: %s", running.Round(time.Second), ready.Round(time.Second))
	if dir := os.Getenv("FIBRIX_ARTIFACTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "e2e-timing.txt"), fmt.Appendf(nil, "order_to_running=%s order_to_ssh=%s\n", running, ready), 0o644)
	}

	e2eDayTwo(t, &e2eGuest{cust: cust, staff: staff, vmID: vm.ID, ip: vm.IP, key: key, keyDir: keyDir, console: console,
		hostKeys: hostKeys, img: img, pool: pool})

	// Delete: the domain, the disk, the address and the capacity go.
	cust.must("DELETE", "/vms/"+vm.ID, nil, nil, 202)
	deadline = time.Now().Add(2 * time.Minute)
	for cust.call("GET", "/vms/"+vm.ID, nil, nil) != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("VM still there two minutes after delete")
		}
		time.Sleep(time.Second)
	}
	if err := exec.Command("virsh", "-c", "qemu:///system", "dominfo", "fibrix-"+vm.ID).Run(); err == nil {
		t.Error("the domain still exists after delete")
	}
	if vols := sh(t, "virsh", "-c", "qemu:///system", "vol-list", pool); strings.Contains(vols, vm.ID) {
		t.Errorf("the disk volume still exists after delete:\n%s", vols)
	}
	var subnets struct {
		Items []struct {
			Used int `json:"used"`
		} `json:"items"`
	}
	staff.must("GET", "/admin/subnets", nil, &subnets, 200)
	if len(subnets.Items) != 1 || subnets.Items[0].Used != 0 {
		t.Errorf("addresses still held after delete: %+v", subnets.Items)
	}
	var h map[string]any
	staff.must("GET", "/admin/hosts/"+host.ID, nil, &h, 200)
	if mem := h["capacity"].(map[string]any)["memory"].(map[string]any)["allocated"]; mem != float64(0) {
		t.Errorf("host memory still allocated after delete: %v", mem)
	}
}

// guestSSH runs cmd in the guest as debian with the customer's key and
// the guest's pinned host keys, trying again until it answers or within
// has passed.
func guestSSH(key, knownHosts, ip, cmd string, within time.Duration) ([]byte, error) {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
			"-o", "UserKnownHostsFile="+knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
			"debian@"+ip, cmd).CombinedOutput()
		cancel()
		if err == nil || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(2 * time.Second)
	}
}

// e2eGuest is the running VM of the end-to-end test and what reaches it.
type e2eGuest struct {
	cust, staff api
	vmID, ip    string
	key, keyDir string
	console     string
	hostKeys    []string
	img         guestimage.Image
	pool        string
	known       string // known_hosts file with hostKeys
}

// guestSize is what the guest itself reports of its size.
type guestSize struct {
	CPUs      int   // nproc
	MemoryMiB int64 // free -m, total
	DiskBytes int64 // lsblk, /dev/vda
	RootMiB   int64 // df, the root file system
}

const guestSizeCmd = `nproc; free -m | awk '/^Mem:/ {print $2}'; lsblk -bdno SIZE /dev/vda; df -BM --output=size / | tail -1 | tr -d M`

func parseGuestSize(out string) (guestSize, error) {
	var g guestSize
	_, err := fmt.Sscan(out, &g.CPUs, &g.MemoryMiB, &g.DiskBytes, &g.RootMiB)
	return g, err
}

// e2eDayTwo runs the day-two steps on the running VM, each a subtest, in
// order: a step leaves the VM running for the next one, and
// -run 'TestEndToEndBoot/<step>' boots the guest and runs only that step.
func e2eDayTwo(t *testing.T, g *e2eGuest) {
	g.known = filepath.Join(g.keyDir, "known_hosts_vm")
	g.pin(t, g.hostKeys)
	for _, step := range []struct {
		name string
		run  func(*testing.T, *e2eGuest)
	}{
		{"graphs", e2eGraphs},
		{"console", e2eConsole},
		{"snapshots", e2eSnapshots},
		{"resize", e2eResize},
		{"rebuild", e2eRebuild},
	} {
		t.Run(step.name, func(t *testing.T) { step.run(t, g) })
	}
}

// pin makes keys the guest's known host keys for SSH.
func (g *e2eGuest) pin(t *testing.T, keys []string) {
	t.Helper()
	var kh strings.Builder
	for _, hk := range keys {
		fmt.Fprintf(&kh, "%s %s\n", g.ip, hk)
	}
	if err := os.WriteFile(g.known, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	g.hostKeys = keys
}

// ssh runs cmd in the guest, trying again until it answers or within has
// passed.
func (g *e2eGuest) ssh(t *testing.T, cmd string, within time.Duration) string {
	t.Helper()
	out, err := guestSSH(g.key, g.known, g.ip, cmd, within)
	if err != nil {
		t.Fatalf("ssh into the VM (%s): %v\n%s", cmd, err, out)
	}
	return string(out)
}

// size is what the guest reports of its size.
func (g *e2eGuest) size(t *testing.T, within time.Duration) guestSize {
	t.Helper()
	out := g.ssh(t, guestSizeCmd, within)
	s, err := parseGuestSize(out)
	if err != nil {
		t.Fatalf("guest size %q: %v", out, err)
	}
	return s
}

// e2eVM is the part of GET /vms/{id} the day-two steps look at.
type e2eVM struct {
	State      string `json:"state"`
	IP         string `json:"ip"`
	Name       string `json:"name"`
	LastError  string `json:"last_error"`
	Operations []struct {
		ID, Type, State, Message string
	} `json:"operations"`
}

// wait waits until operation id has ended and the VM runs again.
func (g *e2eGuest) wait(t *testing.T, id string) e2eVM {
	t.Helper()
	var vm e2eVM
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(time.Second) {
		g.cust.must("GET", "/vms/"+g.vmID, nil, &vm, 200)
		if len(vm.Operations) > 0 && vm.Operations[0].ID == id && vm.Operations[0].State == "failed" {
			t.Fatalf("%s failed: %s", vm.Operations[0].Type, vm.Operations[0].Message)
		}
		if len(vm.Operations) > 0 && vm.Operations[0].ID == id && vm.Operations[0].State == "done" && vm.State == "running" {
			return vm
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s not done: VM %s %q, operations %+v", id, vm.State, vm.LastError, vm.Operations)
		}
	}
}

// e2eResize resizes the nano VM to the medium plan; nproc, free and the
// disk and file system sizes in the guest follow.
func e2eResize(t *testing.T, g *e2eGuest) {
	var op struct{ ID string }
	before := g.size(t, time.Minute)
	start := time.Now()
	g.cust.must("POST", "/vms/"+g.vmID+"/actions", map[string]any{"type": "resize", "plan": "medium"}, &op, 202)
	g.wait(t, op.ID)
	// The guest's SSH comes back once it has booted; cloud-init grows the
	// root file system to the disk on the way, before sshd starts.
	after := g.size(t, 4*time.Minute)
	t.Logf("guest before resize %+v, after %+v", before, after)
	if before.CPUs != 1 || before.MemoryMiB > 512 || before.DiskBytes != 10<<30 {
		t.Errorf("nano guest reports %+v", before)
	}
	// free counts what the kernel leaves of 4096 MiB; df what the file system
	// leaves of 40 GiB.
	if after.CPUs != 2 || after.MemoryMiB < 3500 || after.MemoryMiB > 4096 || after.DiskBytes != 40<<30 || after.RootMiB < 35*1024 {
		t.Errorf("medium guest reports %+v, want 2 CPUs, about 4 GiB of memory, a 40 GiB disk and root file system", after)
	}
	t.Logf("resize → SSH with the new size: %s", time.Since(start).Round(time.Second))
}

// e2eRebuild rebuilds the VM from another image: same name, address and
// size, the other image's marker, fresh host keys printed on the console.
func e2eRebuild(t *testing.T, g *e2eGuest) {
	var op struct{ ID string }
	before := g.size(t, time.Minute)
	marked := g.img.WithFile(t, t.TempDir(), "/etc/fibrix-image", "marked-for-e2e\n")
	g.staff.must("POST", "/admin/images", map[string]any{
		"name": "debian-12-marked", "os": "Debian", "version": "12",
		"source_url": "file://" + marked, "checksum": "sha256:" + fileSum(t, marked),
		"kernel_url": "file://" + g.img.Kernel, "kernel_checksum": "sha256:" + fileSum(t, g.img.Kernel),
		"initrd_url": "file://" + g.img.Initrd, "initrd_checksum": "sha256:" + fileSum(t, g.img.Initrd),
	}, nil, 201)
	start := time.Now()
	g.cust.must("POST", "/vms/"+g.vmID+"/actions", map[string]any{"type": "rebuild", "image": "debian-12-marked"}, &op, 202)
	vm := g.wait(t, op.ID)
	if vm.IP != g.ip || vm.Name != "e2e-web" {
		t.Errorf("rebuild changed the VM to %s at %s", vm.Name, vm.IP)
	}
	var keys []string
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(2 * time.Second) {
		if keys = guestimage.HostKeys(g.console); len(keys) > 0 && !slices.Equal(keys, g.hostKeys) {
			break
		}
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(g.console)
			t.Fatalf("no new SSH host keys on the console within 4 minutes of the rebuild:\n%s", lastLines(string(tail), 30))
		}
	}
	g.pin(t, keys)
	out := g.ssh(t, "cat /etc/fibrix-image; hostname; "+guestSizeCmd, 2*time.Minute)
	lines := strings.SplitN(out, "\n", 3)
	if len(lines) != 3 || lines[0] != "marked-for-e2e" || lines[1] != "e2e-web" {
		t.Fatalf("the rebuilt guest says %q, want the marker and its name", out)
	}
	if s, err := parseGuestSize(lines[2]); err != nil || s.CPUs != before.CPUs || s.DiskBytes != before.DiskBytes || s.RootMiB < before.RootMiB*9/10 {
		t.Errorf("the rebuilt guest reports %+v (%v), want the size it had before, %+v, with its root grown to the disk", s, err, before)
	}
	t.Logf("rebuild → SSH into the other image: %s", time.Since(start).Round(time.Second))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// gatewayHostKey reads the SSH gateway's public host key from the
// instance's database, as the portal shows its fingerprint to customers.
func gatewayHostKey(t *testing.T, dataDir string) string {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pemKey, err := st.Secret(context.Background(), "ssh_gateway_host_key", func() string { return "" })
	if err != nil || pemKey == "" {
		t.Fatalf("gateway host key: %v", err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(pemKey))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// freeTCPPort returns a TCP port number that is free on 127.0.0.1 now.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
