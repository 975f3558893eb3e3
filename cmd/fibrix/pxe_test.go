package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/guestimage"
)

// The rack of the PXE end-to-end test. The node and its BMC live in a
// network namespace on a bridge; a veth pair links the bridge to this
// machine's rack interface, where `fibrix serve` runs DHCP, TFTP and HTTP
// boot. Nothing else answers on that network and nothing leaves it.
const (
	rackServerIP = "10.216.0.1"
	rackBMCIP    = "10.216.0.2"
	rackCIDR     = "10.216.0.0/24"
	nodeMAC      = "52:54:00:21:6e:01"
	nodeDiskSize = 3 << 30
	nodeMemMiB   = 768
	nodeCPUs     = 2
	bmcUser      = "admin"
	bmcPassword  = "rack-bmc-secret"
)

// rackNet is the namespace and the rack interface on this side.
type rackNet struct {
	ns, iface, tap string
}

func runIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newRackNet builds the namespace: bridge br0 with the BMC's address, the
// node's tap, and a veth whose outer end (the rack interface) has the
// server's address.
func newRackNet(t *testing.T) rackNet {
	t.Helper()
	id := strconv.Itoa(os.Getpid() % 100000)
	n := rackNet{ns: "fbxrack" + id, iface: "fbxr" + id, tap: "tap0"}
	_ = exec.Command("ip", "netns", "del", n.ns).Run()
	_ = exec.Command("ip", "link", "del", n.iface).Run()
	runIP(t, "netns", "add", n.ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", n.iface).Run()
		_ = exec.Command("ip", "netns", "del", n.ns).Run()
	})
	runIP(t, "-n", n.ns, "link", "set", "lo", "up")
	runIP(t, "-n", n.ns, "link", "add", "br0", "type", "bridge")
	runIP(t, "-n", n.ns, "addr", "add", rackBMCIP+"/24", "dev", "br0")
	runIP(t, "-n", n.ns, "link", "set", "br0", "up")
	runIP(t, "-n", n.ns, "tuntap", "add", "dev", n.tap, "mode", "tap")
	runIP(t, "-n", n.ns, "link", "set", n.tap, "master", "br0", "up")
	runIP(t, "link", "add", n.iface, "type", "veth", "peer", "name", "rack0", "netns", n.ns)
	runIP(t, "-n", n.ns, "link", "set", "rack0", "master", "br0", "up")
	runIP(t, "addr", "add", rackServerIP+"/24", "dev", n.iface)
	runIP(t, "link", "set", n.iface, "up")
	return n
}

// node is a QEMU machine with an iPXE option ROM behind an ipmi_sim BMC.
// The BMC's chassis_control hook is the power link: power on starts QEMU
// (network first when the next boot device is PXE, else disk first), power
// off ends it, and a guest that powers itself off is off. The BMC's
// address is on the rack network; the node also has QEMU's own simulated
// BMC in band, as servers do, for commissioning to find.
type node struct {
	dir     string
	console string
	disk    string
}

// running reports whether the node's QEMU is up (a process that exited
// but was not reaped yet is not).
func (nd *node) running() bool {
	pid, err := os.ReadFile(filepath.Join(nd.dir, "pid"))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state …: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// chassisHook is ipmi_sim's chassis_control script (argv: name, get|set,
// then parameters): it keeps the boot device in a file and runs QEMU from
// qemu.sh with a pid file.
const chassisHook = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/calls"
shift
op=$1; shift
running() { [ -s "$d/pid" ] && kill -0 "$(cat "$d/pid")" 2>/dev/null; }
stop() {
	if running; then
		kill "$(cat "$d/pid")"
		for i in 1 2 3 4 5 6 7 8 9 10; do running || break; sleep 0.5; done
		running && kill -9 "$(cat "$d/pid")"
	fi
	rm -f "$d/pid"
}
start() {
	running && return 0
	boot=$(cat "$d/boot" 2>/dev/null || echo default)
	# The boot device applies to the next boot only.
	echo default > "$d/boot"
	echo "power on boot=$boot $(date +%T)" >> "$d/power.log"
	setsid "$d/qemu.sh" "$boot" </dev/null >>"$d/qemu.log" 2>&1 &
	echo $! > "$d/pid"
}
case $op in
get)
	for p in "$@"; do
		case $p in
		power) if running; then echo "power:1"; else echo "power:0"; fi ;;
		boot) echo "boot:$(cat "$d/boot" 2>/dev/null || echo default)" ;;
		esac
	done ;;
set)
	while [ $# -ge 2 ]; do
		case $1 in
		power) if [ "$2" = 1 ]; then start; else stop; fi ;;
		reset) [ "$2" = 1 ] && { stop; start; } ;;
		shutdown) [ "$2" = 1 ] && stop ;;
		boot) echo "$2" > "$d/boot" ;;
		esac
		shift 2
	done ;;
esac
exit 0
`

// startNode writes the BMC configuration and runs ipmi_sim in the
// namespace under a small supervisor (ipmi_sim has been seen to exit
// silently).
func startNode(t *testing.T, n rackNet) *node {
	t.Helper()
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.qcow2")
	nd := &node{dir: dir, console: filepath.Join(dir, "console.log"), disk: disk}
	sh(t, "qemu-img", "create", "-q", "-f", "qcow2", disk, strconv.Itoa(nodeDiskSize))
	qemu := fmt.Sprintf(`#!/bin/sh
nic=2; hd=1
[ "$1" = pxe ] && { nic=1; hd=2; }
exec qemu-system-x86_64 -machine pc -accel tcg -m %[1]d -smp %[2]d -display none -monitor none \
  -chardev file,id=con0,path=%[3]s,append=on -serial chardev:con0 \
  -drive file=%[4]s,if=none,id=d0 -device virtio-blk-pci,drive=d0,bootindex=$hd,serial=FBXDISK01 \
  -netdev tap,id=n0,ifname=%[5]s,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=%[6]s,bootindex=$nic \
  -device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0
`, nodeMemMiB, nodeCPUs, nd.console, disk, n.tap, nodeMAC)
	lan := fmt.Sprintf(`name "node1"
set_working_mc 0x20
  startlan 1
    addr %s 623
    priv_limit admin
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s/chassis.sh node1"
  user 2 true "%s" "%s" admin 10 none md2 md5 straight
`, rackBMCIP, dir, bmcUser, bmcPassword)
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	for name, body := range map[string]string{"qemu.sh": qemu, "chassis.sh": chassisHook, "lan.conf": lan, "bmc.emu": emu} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.ns, "ipmi_sim", "-c", filepath.Join(dir, "lan.conf"),
				"-f", filepath.Join(dir, "bmc.emu"), "-s", filepath.Join(dir, "state"), "-n")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if ctx.Err() == nil {
				t.Logf("ipmi_sim exited (%v), restarting: %s", err, lastLines(string(out), 5))
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if pid, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
			_ = exec.Command("kill", "-9", strings.TrimSpace(string(pid))).Run()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", rackBMCIP, "-U", bmcUser, "-P", bmcPassword, "chassis", "power", "status").CombinedOutput()
		if err == nil && strings.Contains(string(out), "off") {
			return nd
		}
		if time.Now().After(deadline) {
			t.Fatalf("the BMC at %s did not answer: %v %s", rackBMCIP, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bootDevices lists the boot device of each power on, in order.
func (nd *node) bootDevices() []string {
	b, _ := os.ReadFile(filepath.Join(nd.dir, "power.log"))
	var out []string
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "boot="); ok {
			out = append(out, v)
		}
	}
	return out
}

func (nd *node) consoleTail(n int) string {
	b, _ := os.ReadFile(nd.console)
	return lastLines(string(b), n)
}

// buildAgentBoot builds the commissioning kernel and initramfs with the
// product's make target script.
func buildAgentBoot(t *testing.T) (kernel, initrd string) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("../../.ci/agent-initramfs.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agent-initramfs: %v\n%s", err, b)
	}
	return filepath.Join(out, "vmlinuz"), filepath.Join(out, "initrd.img")
}

type machineJSON struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	LastError  string `json:"last_error"`
	Cores      int64  `json:"cores"`
	MemoryMiB  int64  `json:"memory_mib"`
	SSHHostKey string `json:"ssh_host_key"`
	HostID     string `json:"host_id"`
	Inventory  struct {
		Disks []struct {
			Name      string `json:"name"`
			SizeBytes int64  `json:"size_bytes"`
			Serial    string `json:"serial"`
		} `json:"disks"`
		NICs []struct {
			MAC string `json:"mac"`
		} `json:"nics"`
		BMC struct {
			Present bool `json:"present"`
		} `json:"bmc"`
	} `json:"inventory"`
	Events []struct {
		Kind    string `json:"kind"`
		To      string `json:"to"`
		Message string `json:"message"`
		Log     string `json:"log"`
	} `json:"events"`
}

// agentLog is the agent log kept with the latest transition into state.
func (m machineJSON) agentLog(state string) string {
	for i := len(m.Events) - 1; i >= 0; i-- {
		if m.Events[i].Kind == "transition" && m.Events[i].To == state {
			return m.Events[i].Log
		}
	}
	return ""
}

// waitMachine polls the machine until it is in state want; a failure state
// or the deadline ends the test with the timeline and the node's console.
func waitMachine(t *testing.T, a api, id, want string, limit time.Duration, nd *node) machineJSON {
	t.Helper()
	deadline := time.Now().Add(limit)
	var m machineJSON
	for {
		a.must("GET", "/admin/machines/"+id, nil, &m, 200)
		if m.State == want {
			return m
		}
		powerFailed := false
		for _, ev := range m.Events {
			powerFailed = powerFailed || ev.Kind == "power_failed"
		}
		if strings.HasPrefix(m.State, "failed") || m.State == "broken" || powerFailed || time.Now().After(deadline) {
			var tl strings.Builder
			for _, ev := range m.Events {
				fmt.Fprintf(&tl, "  %s: %s\n", ev.Kind, ev.Message)
			}
			t.Fatalf("machine is %s (%q), want %s; timeline:\n%s\nconsole:\n%s", m.State, m.LastError, want, tl.String(), nd.consoleTail(40))
		}
		time.Sleep(2 * time.Second)
	}
}

// TestEndToEndPXE is the staff journey on a virtual rack: a QEMU node with
// an iPXE ROM, powered through its ipmi_sim BMC by our IPMI driver,
// PXE-boots from our DHCP/HTTP boot, is commissioned by the agent and
// becomes Ready with its real hardware; deployed, the agent writes the
// machine image and its cloud-init seed, the node reboots, is told to boot
// from its disk, and staff log in over SSH with the deploy key, checking
// the host key the deploy reported.
func TestEndToEndPXE(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU over the network")
	}
	if os.Geteuid() != 0 {
		msg := "the PXE end-to-end test needs root (network namespace, tap, DHCP port 67)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for tool, pkg := range map[string]string{"ipmi_sim": "openipmi", "ipmitool": "ipmitool", "qemu-system-x86_64": "qemu-system-x86",
		"qemu-img": "qemu-utils", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "pkill": "procps", "cpio": "cpio"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " not found (apt-get install " + pkg + ")"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	if _, err := os.Stat("/usr/lib/ipxe/qemu/pxe-virtio.rom"); err != nil {
		msg := "QEMU's iPXE option ROMs are missing (apt-get install ipxe-qemu)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	img := guestimage.ForTest(t)
	kernel, initrd := buildAgentBoot(t)
	images := t.TempDir()
	if err := os.Link(img.Metal, filepath.Join(images, "metal.img.gz")); err != nil {
		sh(t, "cp", img.Metal, filepath.Join(images, "metal.img.gz"))
	}
	rn := newRackNet(t)
	nd := startNode(t, rn)

	bin := buildBinary(t)
	port := freeTCPPort(t)
	bootPort := freeTCPPort(t)
	tftp := freeUDPPort(t)
	in := serve(t, bin, t.TempDir(), "--listen", "127.0.0.1:"+port,
		"--boot-interface", rn.iface, "--boot-server-ip", rackServerIP,
		"--tftp-listen", net.JoinHostPort(rackServerIP, tftp), "--boot-http-listen", net.JoinHostPort(rackServerIP, bootPort),
		"--boot-kernel", kernel, "--boot-initrd", initrd, "--boot-images", images,
		"--agent-url", "http://127.0.0.1:"+port, "--boot-subnet-refresh", "2s", "--discovery-interval", "5s")
	staff := api{t: t, base: in.URL}
	var sess struct{ Token string }
	staff.must("POST", "/auth/login", map[string]string{"email": in.Email, "password": in.Password}, &sess, 200)
	staff.token = sess.Token

	staff.must("POST", "/admin/boot-subnets", map[string]any{"name": "rack-1", "cidr": rackCIDR, "gateway": rackServerIP,
		"dns_servers": []string{rackServerIP}, "range_start": "10.216.0.100", "range_end": "10.216.0.150"}, nil, 201)
	var m machineJSON
	staff.must("POST", "/admin/machines", map[string]any{"name": "node-1", "macs": []string{nodeMAC},
		"power": map[string]any{"type": "ipmi", "address": rackBMCIP, "port": "623", "username": bmcUser, "password": bmcPassword,
			"interface": "lanplus", "cipher_suite": "3", "timeout": "20s"}}, &m, 201)

	// Commissioning: the worker sets PXE and powers the node on.
	start := time.Now()
	staff.must("POST", "/admin/machines/"+m.ID+"/actions", map[string]any{"type": "commission"}, nil, 202)
	m = waitMachine(t, staff, m.ID, "ready", 5*time.Minute, nd)
	t.Logf("commissioned in %v", time.Since(start).Round(time.Second))
	if m.Cores != nodeCPUs || m.MemoryMiB < nodeMemMiB*8/10 || m.MemoryMiB > nodeMemMiB {
		t.Errorf("inventory: %d cores, %d MiB; want %d cores, about %d MiB", m.Cores, m.MemoryMiB, nodeCPUs, nodeMemMiB)
	}
	if len(m.Inventory.Disks) != 1 || m.Inventory.Disks[0].Name != "vda" || m.Inventory.Disks[0].SizeBytes != nodeDiskSize || m.Inventory.Disks[0].Serial != "FBXDISK01" {
		t.Errorf("disks: %+v", m.Inventory.Disks)
	}
	if len(m.Inventory.NICs) != 1 || m.Inventory.NICs[0].MAC != nodeMAC || !m.Inventory.BMC.Present {
		t.Errorf("nics %+v, bmc %+v", m.Inventory.NICs, m.Inventory.BMC)
	}
	if log := m.agentLog("ready"); !strings.Contains(log, `msg="inventory collected"`) {
		t.Errorf("the commissioning transition lacks the agent's log: %q", log)
	}
	if got := nd.bootDevices(); len(got) != 1 || got[0] != "pxe" {
		t.Errorf("power ons for commissioning (boot device each): %v, want one with pxe", got)
	}

	// Deploy with a staff key.
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "id_ed25519")
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@rack", "-f", key)
	pub, _ := os.ReadFile(key + ".pub")
	staff.must("PUT", "/admin/deploy-ssh-keys", map[string]any{"keys": []string{string(pub)}}, nil, 200)
	staff.must("POST", "/admin/images", map[string]any{"name": "debian-12-metal", "os": "Debian", "version": "12", "kind": "machine",
		"source_url": "http://" + net.JoinHostPort(rackServerIP, bootPort) + "/boot/images/metal.img.gz", "checksum": "sha256:" + img.MetalSHA256}, nil, 201)
	start = time.Now()
	staff.must("POST", "/admin/machines/"+m.ID+"/actions", map[string]any{"type": "deploy", "image": "debian-12-metal", "disk": "vda", "kvm_host": true}, nil, 202)
	m = waitMachine(t, staff, m.ID, "deployed", 8*time.Minute, nd)
	t.Logf("deployed in %v", time.Since(start).Round(time.Second))
	if !strings.HasPrefix(m.SSHHostKey, "ssh-ed25519 ") {
		t.Fatalf("deployed machine reports host key %q", m.SSHHostKey)
	}
	if log := m.agentLog("deployed"); !strings.Contains(log, `msg="image written"`) || !strings.Contains(log, `msg="cloud-init seed written"`) {
		t.Errorf("the deploy transition lacks the agent's log: %q", log)
	}

	// The node reboots by itself, is told to boot locally and comes up on
	// its own disk with our DHCP lease.
	var leases struct {
		Items []struct {
			IP  string `json:"ip"`
			MAC string `json:"mac"`
		} `json:"items"`
	}
	var subnets struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	staff.must("GET", "/admin/boot-subnets", nil, &subnets, 200)
	staff.must("GET", "/admin/boot-subnets/"+subnets.Items[0].ID+"/leases", nil, &leases, 200)
	ip := ""
	for _, l := range leases.Items {
		if l.MAC == nodeMAC {
			ip = l.IP
		}
	}
	if ip == "" {
		t.Fatalf("no lease for %s: %+v", nodeMAC, leases)
	}
	knownHosts := filepath.Join(keyDir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(ip+" "+m.SSHHostKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := func(args ...string) (string, error) {
		base := []string{"-i", key, "-o", "UserKnownHostsFile=" + knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
			"-o", "ConnectTimeout=5", "debian@" + ip}
		out, err := exec.Command("ssh", append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(6 * time.Minute)
	var out string
	for {
		var err error
		if out, err = ssh("hostname; findmnt -no SOURCE /; cat /var/lib/cloud/data/instance-id"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SSH login to the deployed node at %s: %v %s\nconsole:\n%s", ip, err, out, nd.consoleTail(40))
		}
		time.Sleep(5 * time.Second)
	}
	t.Logf("SSH login %v after the deploy started", time.Since(start).Round(time.Second))
	lines := strings.Fields(out)
	if len(lines) < 3 || lines[0] != "node-1" || !strings.HasPrefix(lines[1], "/dev/vda") || !strings.HasPrefix(lines[2], m.ID+"-") {
		t.Errorf("on the node: %q", out)
	}
	// The reboot after the deploy came from the agent, not the BMC, and the
	// boot script told the node to use its disk: no PXE loop.
	if got := nd.bootDevices(); len(got) != 2 || got[1] != "pxe" {
		t.Errorf("power ons (boot device each): %v, want commission and deploy, both pxe", got)
	}
	if !strings.Contains(in.Stderr.String(), `script=local`) {
		t.Errorf("the boot service never sent the local-boot script:\n%s", lastLines(in.Stderr.String(), 20))
	}

	// Deployed as a KVM host: registered with the reported host key pinned,
	// and discovery logs in as debian with the provisioner's key and reads
	// the node's libvirt.
	if m.HostID == "" {
		t.Fatalf("the deploy registered no host; timeline: %+v", m.Events)
	}
	var host struct {
		URI         string `json:"uri"`
		State       string `json:"state"`
		LastError   string `json:"last_error"`
		Fingerprint string `json:"ssh_host_key_fingerprint"`
		Capacity    struct {
			CPU    struct{ Physical int64 } `json:"cpu"`
			Memory struct{ Physical int64 } `json:"memory"`
		} `json:"capacity"`
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		staff.must("GET", "/admin/hosts/"+m.HostID, nil, &host, 200)
		if host.State == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s is %s: %s", host.URI, host.State, host.LastError)
		}
		time.Sleep(2 * time.Second)
	}
	if host.URI != "qemu+ssh://debian@"+ip+"/system" || host.Capacity.CPU.Physical != nodeCPUs ||
		host.Capacity.Memory.Physical < nodeMemMiB*8/10 || host.Capacity.Memory.Physical > nodeMemMiB {
		t.Errorf("host = %+v", host)
	}
	hk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(m.SSHHostKey))
	if err != nil || host.Fingerprint != gossh.FingerprintSHA256(hk) {
		t.Errorf("host key fingerprint %q, the deploy reported %q (%v)", host.Fingerprint, m.SSHHostKey, err)
	}
	// The machine cannot be released while it is a host.
	var refusal struct {
		Error struct{ Message string } `json:"error"`
	}
	if code := staff.call("POST", "/admin/machines/"+m.ID+"/actions", map[string]any{"type": "release", "erase": true}, &refusal); code != 409 ||
		!strings.Contains(refusal.Error.Message, "delete that host") {
		t.Errorf("release of a host: %d %+v", code, refusal)
	}
	staff.must("DELETE", "/admin/hosts/"+m.HostID, nil, nil, 204)

	// Release with erase: the agent boots once more, quick-wipes the disk
	// and powers the node off; the machine is ready again.
	staff.must("POST", "/admin/machines/"+m.ID+"/actions", map[string]any{"type": "release", "erase": true}, nil, 202)
	m = waitMachine(t, staff, m.ID, "ready", 5*time.Minute, nd)
	erased := false
	for _, ev := range m.Events {
		erased = erased || (ev.Kind == "disk_erased" && ev.Message == "disk erased: vda")
	}
	if !erased || m.SSHHostKey != "" {
		t.Errorf("after the release: erased %v, host key %q", erased, m.SSHHostKey)
	}
	if got := nd.bootDevices(); len(got) != 3 || got[2] != "pxe" {
		t.Errorf("power ons (boot device each): %v, want a third, pxe, for the release", got)
	}
	// The agent powers off after its report; then the disk can be read.
	deadline = time.Now().Add(time.Minute)
	for nd.running() {
		if time.Now().After(deadline) {
			t.Fatal("the node is still on a minute after the release")
		}
		time.Sleep(time.Second)
	}
	head := filepath.Join(t.TempDir(), "head")
	sh(t, "qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=1M", "count=1", "if="+nd.disk, "of="+head)
	if b, err := os.ReadFile(head); err != nil || len(b) != 1<<20 || strings.Trim(string(b), "\x00") != "" {
		t.Errorf("the first MiB of the released disk is not zero (%d bytes, %v)", len(b), err)
	}

	sc := bufio.NewScanner(strings.NewReader(in.Stderr.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), bmcPassword) {
			t.Errorf("the BMC password is in the log: %s", sc.Text())
		}
	}
}
