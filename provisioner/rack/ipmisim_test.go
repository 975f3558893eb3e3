package rack_test

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/ipmisimtest"
)

// The real BMC for the worker's IPMI tests: ipmi_sim run with --debug, so
// that its log shows every IPMI 1.5 message it receives. ipmi_sim keeps
// only the device selector of the boot flags (it answers "legacy" to a
// read whatever was set), so the EFI bit is checked in the Set System Boot
// Options requests the BMC logged.

const simPassword = ipmisimtest.Password

type bmcSim struct{ *ipmisimtest.BMC }

func startBMC(t *testing.T, name string) *bmcSim {
	t.Helper()
	return startBMCWith(t, name, "")
}

// startBMCWith starts a BMC whose emulator file also runs emu (sensor
// records, say) before the BMC is enabled.
func startBMCWith(t *testing.T, name, emu string) *bmcSim {
	t.Helper()
	return &bmcSim{ipmisimtest.Start(t, name, ipmisimtest.Options{Emu: emu, Debug: true})}
}

// params are the power parameters of a machine behind this BMC, over IPMI
// 1.5 (whose messages the debug log shows in clear).
func (s *bmcSim) params() map[string]string { return s.Params("lan") }

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
	f, err := os.Open(filepath.Join(s.Dir, "debug.log"))
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
		for _, c := range s.Calls(t) {
			if c == s.Name+" "+call {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chassis hook never saw %q; calls: %q", call, s.Calls(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
