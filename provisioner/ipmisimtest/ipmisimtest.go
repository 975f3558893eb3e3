// Package ipmisimtest runs the real BMC the power and rack tests talk to:
// OpenIPMI's ipmi_sim on its own loopback port, with a chassis_control hook
// that keeps the power state and boot device in files and logs every call,
// cross-checked with ipmitool.
package ipmisimtest

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

// The BMC's one account.
const (
	User     = "admin"
	Password = "secret"
)

// Need skips when a tool is missing on a developer's machine, and fails in
// CI, where every tool must be installed.
func Need(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("%s not found: install the Debian package %s", path, pkg)
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
}

// FreeUDPPort returns a loopback UDP port nobody listens on.
func FreeUDPPort(t testing.TB) int {
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
// boot device in files and logs every call, for the tests to assert. A soft
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

// CPUTempSDR is a full sensor record (IPMI 2.0 §43.1): sensor 1, a
// temperature in degrees C, linear, M=1, named "CPU Temp".
const CPUTempSDR = "0x00 0x00 0x51 0x01 0x33 0x20 0x00 0x01 0x03 0x01 0x7f 0x68 0x01 0x01 " +
	"0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x01 0x00 0x00 0x01 0x00 0x00 0x00 0x00 0x00 0x00 " +
	"0x00 0x00 0x00 0xff 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 " +
	"0xc8 0x43 0x50 0x55 0x20 0x54 0x65 0x6d 0x70"

// CPUTempSensor is emulator input that puts that record in the BMC's SDR
// repository, reading celsius.
func CPUTempSensor(celsius int) string {
	return fmt.Sprintf("main_sdr_add 0x20 %s\nsensor_add 0x20 0 1 0x01 0x01\nsensor_set_value 0x20 0 1 %d 0\n", CPUTempSDR, celsius)
}

// Options shape a BMC.
type Options struct {
	// Emu is emulator input run before the BMC is enabled (sensor
	// records, say).
	Emu string
	// Debug runs ipmi_sim with -d: its log, Dir/debug.log, shows every
	// IPMI 1.5 message it receives.
	Debug bool
}

// BMC is one ipmi_sim under a supervisor that restarts it when it exits
// (one has been seen to exit silently).
type BMC struct {
	Name string
	Port int
	// Dir holds the configuration, the hook's files (calls, power, boot)
	// and, with Debug, debug.log.
	Dir string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs a BMC on a free loopback port and returns once ipmitool gets
// an answer from it. It is stopped when the test ends.
func Start(t testing.TB, name string, opt Options) *BMC {
	t.Helper()
	Need(t, "/usr/bin/ipmi_sim", "openipmi")
	Need(t, "/usr/bin/ipmitool", "ipmitool")
	dir := t.TempDir()
	b := &BMC{Name: name, Port: FreeUDPPort(t), Dir: dir}
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
`, name, b.Port, filepath.Join(dir, "chassis.sh"), name, User, Password)
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n" + opt.Emu + "mc_enable 0x20\n"
	for file, body := range map[string]string{"chassis.sh": chassisScript, "lan.conf": lan, "bmc.emu": emu} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	var logf *os.File
	if opt.Debug {
		var err error
		if logf, err = os.OpenFile(filepath.Join(dir, "debug.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go b.supervise(ctx, t, logf, done)
	t.Cleanup(func() {
		cancel()
		<-done
		if logf != nil {
			logf.Close()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := b.IpmitoolErr("chassis", "power", "status"); err == nil {
			return b
		} else if time.Now().After(deadline) {
			t.Fatalf("%s on port %d did not answer: %v", name, b.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *BMC) supervise(ctx context.Context, t testing.TB, logf *os.File, done chan struct{}) {
	defer close(done)
	for {
		args := []string{"-c", filepath.Join(b.Dir, "lan.conf"), "-f", filepath.Join(b.Dir, "bmc.emu"), "-s", filepath.Join(b.Dir, "state")}
		if logf != nil {
			args = append(args, "-d")
		} else {
			args = append(args, "-n")
		}
		cmd := exec.CommandContext(ctx, "/usr/bin/ipmi_sim", args...)
		cmd.Dir = b.Dir
		var err error
		var stdin interface{ Close() error }
		if logf != nil {
			// Without --nostdio ipmi_sim reads console commands from
			// stdin and prints its debug output; an open, silent pipe
			// keeps it running.
			cmd.Stdout, cmd.Stderr = logf, logf
			stdin, err = cmd.StdinPipe()
		}
		if err == nil {
			b.mu.Lock()
			b.cmd = cmd
			err = cmd.Start()
			b.mu.Unlock()
			if err == nil {
				err = cmd.Wait()
			}
		}
		if stdin != nil {
			stdin.Close()
		}
		if ctx.Err() != nil {
			return
		}
		t.Logf("%s: ipmi_sim exited (%v); restarting", b.Name, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill ends the current ipmi_sim process; the supervisor starts another.
func (b *BMC) Kill(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
}

// Params are the power parameters of a machine behind this BMC over iface
// (lan or lanplus). The per-command deadline is generous: ipmi_sim answers
// in milliseconds, but a loaded 2-core machine can stall it for seconds.
func (b *BMC) Params(iface string) map[string]string {
	return map[string]string{"address": "127.0.0.1", "port": strconv.Itoa(b.Port), "username": User, "interface": iface, "timeout": "20s"}
}

// Ipmitool runs ipmitool over lanplus against this BMC.
func (b *BMC) Ipmitool(t testing.TB, args ...string) string {
	t.Helper()
	out, err := b.IpmitoolErr(args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// IpmitoolErr is Ipmitool returning the failure.
func (b *BMC) IpmitoolErr(args ...string) (string, error) {
	base := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(b.Port),
		"-U", User, "-P", Password, "-N", "1", "-R", "1"}
	out, err := exec.Command("/usr/bin/ipmitool", append(base, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

// Calls returns what the chassis_control hook was asked, one call a line.
func (b *BMC) Calls(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Dir, "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}
