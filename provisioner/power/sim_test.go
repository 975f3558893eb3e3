package power

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The real peer for the IPMI driver: OpenIPMI's ipmi_sim, one process per
// BMC on its own loopback port, cross-checked with ipmitool.

const (
	simUser     = "admin"
	simPassword = "secret"
)

// need skips when a tool is missing on a developer's machine, and fails in
// CI, where every tool must be installed.
func need(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s not found: install the Debian package %s", path, pkg)
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
}

// freeUDPPort returns a loopback UDP port nobody listens on.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return port
}

// chassisScript is ipmi_sim's chassis_control hook. It keeps the power and
// boot device in files and logs every call, for the test to assert. A soft
// off (ACPI) powers off, as an operating system that honours it would.
const chassisScript = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/calls"
shift
op=$1; shift
case $op in
get)
	for p in "$@"; do
		case $p in
		power) echo "power:$(cat "$d/power" 2>/dev/null || echo 0)" ;;
		boot) echo "boot:$(cat "$d/boot" 2>/dev/null || echo default)" ;;
		esac
	done ;;
set)
	while [ $# -ge 2 ]; do
		case $1 in
		power) echo "$2" > "$d/power" ;;
		shutdown) [ "$2" = 1 ] && echo 0 > "$d/power" ;;
		boot) echo "$2" > "$d/boot" ;;
		esac
		shift 2
	done ;;
esac
exit 0
`

// cpuTempSDR is a full sensor record (IPMI 2.0 §43.1): sensor 1, a
// temperature in degrees C, linear, M=1, named "CPU Temp".
const cpuTempSDR = "0x00 0x00 0x51 0x01 0x33 0x20 0x00 0x01 0x03 0x01 0x7f 0x68 0x01 0x01 " +
	"0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x01 0x00 0x00 0x01 0x00 0x00 0x00 0x00 0x00 0x00 " +
	"0x00 0x00 0x00 0xff 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 " +
	"0xc8 0x43 0x50 0x55 0x20 0x54 0x65 0x6d 0x70"

// sim is one ipmi_sim BMC under a supervisor that restarts it when it exits.
type sim struct {
	name string
	port int
	dir  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
}

// startSim starts a BMC on a free loopback port; with sensors, its SDR
// repository holds one temperature sensor reading 45.
func startSim(t testing.TB, name string, sensors bool) *sim {
	t.Helper()
	need(t, "/usr/bin/ipmi_sim", "openipmi")
	dir := t.TempDir()
	s := &sim{name: name, port: freeUDPPort(t), dir: dir}
	script := filepath.Join(dir, "chassis.sh")
	lan := fmt.Sprintf(`name "%s"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s %s"
  user 2 true "%s" "%s" admin 10 none md2 md5 straight
`, name, s.port, script, name, simUser, simPassword)
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n"
	if sensors {
		emu += "main_sdr_add 0x20 " + cpuTempSDR + "\nsensor_add 0x20 0 1 0x01 0x01\nsensor_set_value 0x20 0 1 45 0\n"
	}
	emu += "mc_enable 0x20\n"
	for file, body := range map[string]string{"chassis.sh": chassisScript, "lan.conf": lan, "bmc.emu": emu} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go s.supervise(ctx, t, done)
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// Ready when ipmitool gets an answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.ipmitoolErr("chassis", "power", "status"); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("%s on port %d did not answer: %v", name, s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sim) supervise(ctx context.Context, t testing.TB, done chan struct{}) {
	defer close(done)
	for {
		cmd := exec.CommandContext(ctx, "/usr/bin/ipmi_sim", "-c", filepath.Join(s.dir, "lan.conf"),
			"-f", filepath.Join(s.dir, "bmc.emu"), "-s", filepath.Join(s.dir, "state"), "-n")
		cmd.Dir = s.dir
		s.mu.Lock()
		s.cmd = cmd
		err := cmd.Start()
		s.mu.Unlock()
		if err == nil {
			err = cmd.Wait()
		}
		if ctx.Err() != nil {
			return
		}
		t.Logf("%s: ipmi_sim exited (%v); restarting", s.name, err)
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill ends the current ipmi_sim process; the supervisor starts another.
func (s *sim) kill(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
}

// params are the driver settings for this BMC. The per-command deadline is
// generous: ipmi_sim answers in milliseconds, but a loaded 2-core machine can
// stall it for seconds, and these tests are about behaviour, not speed.
func (s *sim) params(iface string) map[string]string {
	return map[string]string{"address": "127.0.0.1", "port": strconv.Itoa(s.port), "username": simUser, "interface": iface, "timeout": "20s"}
}

// ipmitool runs ipmitool over lanplus against this BMC.
func (s *sim) ipmitool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.ipmitoolErr(args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (s *sim) ipmitoolErr(args ...string) (string, error) {
	base := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-U", simUser, "-P", simPassword, "-N", "1", "-R", "1"}
	out, err := exec.Command("/usr/bin/ipmitool", append(base, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

// calls returns what the chassis_control hook was asked, one call a line.
func (s *sim) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
