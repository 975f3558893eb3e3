package rack_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real BMC for the worker's IPMI tests: OpenIPMI's ipmi_sim on its own
// loopback port, run with --debug so that its log shows every IPMI 1.5
// message it receives. ipmi_sim keeps only the device selector of the boot
// flags (it answers "legacy" to a read whatever was set), so the EFI bit
// is checked in the Set System Boot Options requests the BMC logged.

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

// chassisScript is ipmi_sim's chassis_control hook: it keeps the power and
// boot device in files and logs every call.
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

// bmcSim is one ipmi_sim under a supervisor that restarts it if it exits.
type bmcSim struct {
	name string
	port int
	dir  string
}

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

func startBMC(t *testing.T, name string) *bmcSim {
	t.Helper()
	return startBMCWith(t, name, "")
}

// cpuTempSDR is a full sensor record (IPMI 2.0 §43.1): sensor 1, a
// temperature in degrees C, linear, M=1, named "CPU Temp".
const cpuTempSDR = "0x00 0x00 0x51 0x01 0x33 0x20 0x00 0x01 0x03 0x01 0x7f 0x68 0x01 0x01 " +
	"0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x01 0x00 0x00 0x01 0x00 0x00 0x00 0x00 0x00 0x00 " +
	"0x00 0x00 0x00 0xff 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 " +
	"0xc8 0x43 0x50 0x55 0x20 0x54 0x65 0x6d 0x70"

// cpuTempSensor puts that record in the BMC's SDR repository, reading
// celsius.
func cpuTempSensor(celsius int) string {
	return fmt.Sprintf("main_sdr_add 0x20 %s\nsensor_add 0x20 0 1 0x01 0x01\nsensor_set_value 0x20 0 1 %d 0\n", cpuTempSDR, celsius)
}

// startBMCWith starts a BMC whose emulator file also runs emu (sensor
// records, say) before the BMC is enabled.
func startBMCWith(t *testing.T, name, emu string) *bmcSim {
	t.Helper()
	need(t, "/usr/bin/ipmi_sim", "openipmi")
	need(t, "/usr/bin/ipmitool", "ipmitool")
	dir := t.TempDir()
	s := &bmcSim{name: name, port: freeUDPPort(t), dir: dir}
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
`, name, s.port, filepath.Join(dir, "chassis.sh"), name, simUser, simPassword)
	emu = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n" + emu + "mc_enable 0x20\n"
	for file, body := range map[string]string{"chassis.sh": chassisScript, "lan.conf": lan, "bmc.emu": emu} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "debug.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			// Without --nostdio ipmi_sim reads console commands from
			// stdin and prints its debug output; an open, silent pipe
			// keeps it running.
			cmd := exec.CommandContext(ctx, "/usr/bin/ipmi_sim", "-c", filepath.Join(dir, "lan.conf"),
				"-f", filepath.Join(dir, "bmc.emu"), "-s", filepath.Join(dir, "state"), "-d")
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
			stdin, err := cmd.StdinPipe()
			if err == nil {
				if err = cmd.Start(); err == nil {
					err = cmd.Wait()
				}
				stdin.Close()
			}
			if ctx.Err() != nil {
				return
			}
			t.Logf("%s: ipmi_sim exited (%v); restarting", name, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := s.ipmitoolErr("chassis", "power", "status"); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("%s on port %d did not answer: %v", name, s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// params are the power parameters of a machine behind this BMC, over IPMI
// 1.5 (whose messages the debug log shows in clear). The per-command
// deadline is generous for a loaded machine.
func (s *bmcSim) params() map[string]string {
	return map[string]string{"address": "127.0.0.1", "port": strconv.Itoa(s.port), "username": simUser,
		"interface": "lan", "timeout": "20s"}
}

func (s *bmcSim) ipmitool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.ipmitoolErr(args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (s *bmcSim) ipmitoolErr(args ...string) (string, error) {
	base := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-U", simUser, "-P", simPassword, "-N", "1", "-R", "1"}
	out, err := exec.Command("/usr/bin/ipmitool", append(base, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

// calls returns what the chassis hook was asked, one call a line.
func (s *bmcSim) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// bootFlags is the first two bytes of a boot flags parameter (IPMI 2.0
// table 28-14): byte 1 holds valid (bit 7), persistent (bit 6) and EFI
// (bit 5); byte 2 the device selector in bits 5:2 (1 = PXE).
type bootFlags struct {
	Valid, Persistent, EFI bool
	Device                 byte
}

// bootFlagWrites returns, in order, the boot flags of every Set System
// Boot Options request (chassis netfn 0x00, command 0x08, parameter 5)
// the BMC logged receiving over IPMI 1.5.
func (s *bmcSim) bootFlagWrites(t *testing.T) []bootFlags {
	t.Helper()
	f, err := os.Open(filepath.Join(s.dir, "debug.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []bootFlags
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	next := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Receive message:") {
			next = true
			continue
		}
		if !next {
			continue
		}
		next = false
		raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
		if err != nil {
			continue
		}
		if data, ok := lanRequest(raw, 0x00, 0x08); ok && len(data) >= 3 && data[0]&0x7f == 5 {
			out = append(out, bootFlags{Valid: data[1]&0x80 != 0, Persistent: data[1]&0x40 != 0,
				EFI: data[1]&0x20 != 0, Device: data[2] >> 2 & 0x0f})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// lanRequest returns the data of an IPMI 1.5 LAN packet carrying a
// request for netFn/cmd: RMCP header (4 bytes, class 7), session header
// (auth type, sequence, session id, a 16-byte auth code unless the auth
// type is none), message length, then rsSA, netFn/LUN, checksum, rqSA,
// rqSeq/LUN, command, data and a checksum.
func lanRequest(p []byte, netFn, cmd byte) ([]byte, bool) {
	if len(p) < 14 || p[0] != 0x06 || p[3]&0x1f != 0x07 {
		return nil, false
	}
	auth := p[4]
	if auth == 0x06 { // RMCP+: encrypted, not ours to read
		return nil, false
	}
	off := 13
	if auth != 0 {
		off += 16
	}
	if len(p) <= off {
		return nil, false
	}
	n := int(p[off])
	msg := p[off+1:]
	if n < 7 || len(msg) < n {
		return nil, false
	}
	msg = msg[:n]
	if msg[1]>>2 != netFn || msg[5] != cmd {
		return nil, false
	}
	return msg[6 : n-1], true
}

// waitCall waits for the chassis hook to have been called with call (the
// simulator runs the second half of a cycle asynchronously).
func (s *bmcSim) waitCall(t *testing.T, call string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, c := range s.calls(t) {
			if c == s.name+" "+call {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chassis hook never saw %q; calls: %q", call, s.calls(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
