package power

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/ipmisimtest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newDriver(t *testing.T, params map[string]string, secret string) *IPMI {
	t.Helper()
	d, err := New(Config{Type: "ipmi", Params: params, Secret: secret}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.(io.Closer).Close() })
	return d.(*IPMI)
}

// wantPower cross-checks the driver's view of the power state with ipmitool's.
func wantPower(t *testing.T, d *IPMI, s *ipmisimtest.BMC, want State) {
	t.Helper()
	got, err := d.PowerState(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("PowerState: %v", err)
	}
	if got != want {
		t.Errorf("PowerState = %s; want %s", got, want)
	}
	if out := s.Ipmitool(t, "chassis", "power", "status"); !strings.Contains(out, "Chassis Power is "+string(want)) {
		t.Errorf("ipmitool chassis power status = %q; want %s", strings.TrimSpace(out), want)
	}
}

// wantCall waits for the chassis hook to have been called with call (the
// simulator runs it asynchronously for a cycle's second half).
func wantCall(t *testing.T, s *ipmisimtest.BMC, from int, call string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(s.Calls(t)[from:], s.Name+" "+call) {
		if time.Now().After(deadline) {
			t.Fatalf("chassis hook never saw %q; calls: %q", call, s.Calls(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIPMIRack drives a rack of simulated BMCs over IPMI 1.5 and 2.0
// through every driver capability, checking each change with ipmitool and
// with the BMC's chassis hook.
func TestIPMIRack(t *testing.T) {
	ipmisimtest.Need(t, "/usr/bin/ipmitool", "ipmitool")
	rack := []struct {
		iface string
		suite string
	}{
		{"lan", ""},
		{"lanplus", "3"},
		{"lanplus", ""},   // the default suite, 3
		{"lanplus", "17"}, // not offered by ipmi_sim: must fail clearly
		{"lanplus", "6"},  // ipmi_sim opens the session, then answers nothing in it
	}
	for i, m := range rack {
		name := fmt.Sprintf("bmc%d-%s%s", i, m.iface, m.suite)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, fmt.Sprintf("bmc%d", i), true)
			p := s.Params(m.iface)
			if m.suite != "" {
				p["cipher_suite"] = m.suite
			}
			d := newDriver(t, p, simPassword)
			if m.suite == "17" || m.suite == "6" {
				p["timeout"] = "2s"
				d := newDriver(t, p, simPassword)
				_, err := d.PowerState(ctxT(t, 20*time.Second))
				if err == nil {
					t.Fatalf("cipher suite %s worked against ipmi_sim", m.suite)
				}
				if !strings.Contains(err.Error(), "cipher suite") {
					t.Errorf("error %q does not name the cipher suite", err)
				}
				t.Logf("suite %s against ipmi_sim: %v", m.suite, err)
				return
			}
			ctx := ctxT(t, 60*time.Second)
			step := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}

			wantPower(t, d, s, Off)
			from := len(s.Calls(t))
			step("PowerOn", d.PowerOn(ctx))
			wantCall(t, s, from, "set power 1")
			wantPower(t, d, s, On)

			from = len(s.Calls(t))
			step("SetBootDevice pxe", d.SetBootDevice(ctx, PXE, false, false))
			wantCall(t, s, from, "set boot pxe")
			if out := s.Ipmitool(t, "chassis", "bootparam", "get", "5"); !strings.Contains(out, "Force PXE") {
				t.Errorf("bootparam get 5 after pxe:\n%s", out)
			}
			// ipmi_sim keeps only the device selector of the boot flags
			// (not EFI nor persistence); the in-process BMC test checks those.
			from = len(s.Calls(t))
			step("SetBootDevice disk", d.SetBootDevice(ctx, Disk, false, false))
			wantCall(t, s, from, "set boot default")
			if out := s.Ipmitool(t, "chassis", "bootparam", "get", "5"); !strings.Contains(out, "Force Boot from default Hard-Drive") {
				t.Errorf("bootparam get 5 after disk:\n%s", out)
			}

			from = len(s.Calls(t))
			step("PowerCycle", d.PowerCycle(ctx))
			wantCall(t, s, from, "set power 0")
			wantCall(t, s, from, "set power 1")
			wantPower(t, d, s, On)

			from = len(s.Calls(t))
			step("SoftOff", d.SoftOff(ctx))
			wantCall(t, s, from, "set shutdown 1")
			wantPower(t, d, s, Off)

			step("PowerOn", d.PowerOn(ctx))
			wantPower(t, d, s, On)
			step("PowerOff", d.PowerOff(ctx))
			wantPower(t, d, s, Off)

			// A cycle of a machine that is off switches it on.
			step("PowerCycle from off", d.PowerCycle(ctx))
			wantPower(t, d, s, On)

			got, err := d.Sensors(ctx)
			step("Sensors", err)
			want := []Sensor{{Name: "CPU Temp", Type: "Temperature", Value: 45, Unit: "degrees C", Status: "ok"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Sensors (-want +got):\n%s", diff)
			}
			if out := s.Ipmitool(t, "sdr", "list"); !strings.Contains(out, "CPU Temp") || !strings.Contains(out, "45 degrees C") {
				t.Errorf("ipmitool sdr list = %q", out)
			}
		})
	}
}

func TestIPMIEmptySDR(t *testing.T) {
	s := startSim(t, "bmc-empty", false)
	for _, iface := range []string{"lan", "lanplus"} {
		d := newDriver(t, s.Params(iface), simPassword)
		got, err := d.Sensors(ctxT(t, 10*time.Second))
		if err != nil {
			t.Fatalf("%s: Sensors on an empty SDR repository: %v", iface, err)
		}
		if got == nil || len(got) != 0 {
			t.Errorf("%s: Sensors = %#v; want an empty list", iface, got)
		}
	}
}

func TestIPMIWrongPassword(t *testing.T) {
	s := startSim(t, "bmc-auth", false)
	for _, tc := range []struct{ name, iface, user string }{
		{"lan", "lan", simUser},
		{"lanplus", "lanplus", simUser},
		{"lanplus unknown user", "lanplus", "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := s.Params(tc.iface)
			p["username"] = tc.user
			d := newDriver(t, p, "wrong")
			start := time.Now()
			_, err := d.PowerState(ctxT(t, 20*time.Second))
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("PowerState with a wrong password: %v; want ErrAuth", err)
			}
			if want := "the BMC refused the credentials (user " + tc.user + ")"; err.Error() != want {
				t.Errorf("error = %q; want %q", err, want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
			t.Logf("refused in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

func TestIPMIDeadBMC(t *testing.T) {
	// Nothing listens on one port; on the other a socket swallows every
	// packet, like a BMC that hangs.
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := silent.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	cases := []struct {
		name    string
		port    int
		iface   string
		timeout string
		want    time.Duration
		waits   bool // no ICMP "port unreachable" comes back: the whole timeout passes
	}{
		{"nothing listening lanplus", ipmisimtest.FreeUDPPort(t), "lanplus", "", 5 * time.Second, false},
		{"nothing listening lan", ipmisimtest.FreeUDPPort(t), "lan", "", 5 * time.Second, false},
		{"silent lanplus", silent.LocalAddr().(*net.UDPAddr).Port, "lanplus", "", 5 * time.Second, true},
		{"silent lan", silent.LocalAddr().(*net.UDPAddr).Port, "lan", "2s", 2 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := map[string]string{"address": "127.0.0.1", "port": strconv.Itoa(tc.port), "username": simUser, "interface": tc.iface}
			if tc.timeout != "" {
				p["timeout"] = tc.timeout
			}
			d := newDriver(t, p, simPassword)
			start := time.Now()
			err := d.PowerOn(ctxT(t, 30*time.Second))
			took := time.Since(start)
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("PowerOn: %v; want ErrUnreachable", err)
			}
			want := fmt.Sprintf("no answer from the BMC at 127.0.0.1:%d within %s", tc.port, tc.want)
			if err.Error() != want {
				t.Errorf("error = %q; want %q", err, want)
			}
			// Never much sooner than the deadline when the BMC is silent; later
			// only by scheduling delays on a loaded machine.
			if took > tc.want+10*time.Second || tc.waits && took < tc.want-200*time.Millisecond {
				t.Errorf("took %v; want about the %v timeout", took, tc.want)
			}
			t.Logf("gave up after %v", took.Round(time.Millisecond))
		})
	}
}

// TestIPMIReopensSession restarts the BMC under an open session: the next
// command must open a new session and succeed.
func TestIPMIReopensSession(t *testing.T) {
	s := startSim(t, "bmc-restart", false)
	for _, iface := range []string{"lanplus", "lan"} {
		d := newDriver(t, s.Params(iface), simPassword)
		if _, err := d.PowerState(ctxT(t, 45*time.Second)); err != nil {
			t.Fatal(err)
		}
		old := d.c
		s.Kill(t)
		// Wait for the supervisor's new ipmi_sim.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := s.IpmitoolErr("chassis", "power", "status"); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("ipmi_sim not restarted: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		start := time.Now()
		if err := d.PowerOn(ctxT(t, 45*time.Second)); err != nil {
			t.Fatalf("%s: PowerOn after a BMC restart: %v", iface, err)
		}
		if d.c == old {
			t.Errorf("%s: session not reopened", iface)
		}
		t.Logf("%s: command after BMC restart took %v (stale session given up, new one opened)", iface, time.Since(start).Round(time.Millisecond))
		wantPower(t, d, s, On)
		if err := d.PowerOff(ctxT(t, 45*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIPMIConcurrent sends ten goroutines' commands to one BMC: the driver
// serialises them over its one session and all succeed.
func TestIPMIConcurrent(t *testing.T) {
	s := startSim(t, "bmc-conc", true)
	d := newDriver(t, s.Params("lanplus"), simPassword)
	ctx := ctxT(t, 60*time.Second)
	if _, err := d.PowerState(ctx); err != nil {
		t.Fatal(err)
	}
	session := d.c
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				var err error
				switch (g + i) % 4 {
				case 0:
					_, err = d.PowerState(ctx)
				case 1:
					err = d.PowerOn(ctx)
				case 2:
					err = d.SetBootDevice(ctx, PXE, false, false)
				case 3:
					_, err = d.Sensors(ctx)
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d call %d: %w", g, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d.c != session {
		t.Error("the session was replaced during the run")
	}
	wantPower(t, d, s, On)
}

// BenchmarkIPMIOpenSession compares one command in an open session
// through the driver with the same command through ipmitool (batch mode:
// one session for all commands), against the same simulated BMC. Get
// Device ID is answered by ipmi_sim itself; chassis power status runs the
// chassis hook, a shell script, every time.
//
//	go test ./provisioner/power -run '^$' -bench IPMIOpenSession
func BenchmarkIPMIOpenSession(b *testing.B) {
	ipmisimtest.Need(b, "/usr/bin/ipmitool", "ipmitool")
	s := startSim(b, "bmc-bench", false)
	for _, iface := range []string{"lanplus", "lan"} {
		d, err := New(Config{Type: "ipmi", Params: s.Params(iface), Secret: simPassword}, nil)
		if err != nil {
			b.Fatal(err)
		}
		drv := d.(*IPMI)
		b.Cleanup(func() { drv.Close() })
		for _, c := range []struct {
			name, cmd string
			f         func(ctx context.Context) error
		}{
			{"get-device-id", "raw 0x06 0x01", func(ctx context.Context) error {
				return drv.do(ctx, "get device id", func(ctx context.Context, c *client.Client) error {
					_, err := c.GetDeviceID(ctx)
					return err
				})
			}},
			{"chassis-power-status", "chassis power status", func(ctx context.Context) error {
				_, err := drv.PowerState(ctx)
				return err
			}},
		} {
			b.Run(iface+"/"+c.name+"/driver", func(b *testing.B) {
				ctx := context.Background()
				if err := c.f(ctx); err != nil { // open the session
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					if err := c.f(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/cmd")
			})
			b.Run(iface+"/"+c.name+"/ipmitool", func(b *testing.B) {
				batch := func(k int) {
					f := filepath.Join(b.TempDir(), "batch")
					if err := os.WriteFile(f, []byte(strings.Repeat(c.cmd+"\n", k)), 0o644); err != nil {
						b.Fatal(err)
					}
					args := []string{"-I", iface, "-H", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", simUser, "-P", simPassword}
					if iface == "lanplus" {
						args = append(args, "-C", "3")
					}
					if out, err := exec.Command("/usr/bin/ipmitool", append(args, "exec", f)...).CombinedOutput(); err != nil {
						b.Fatalf("ipmitool exec: %v: %s", err, out)
					}
				}
				// The session setup and process start of a one-command
				// batch are subtracted, leaving the per-command cost.
				b.StopTimer()
				start := time.Now()
				batch(1)
				setup := time.Since(start)
				start = time.Now()
				batch(b.N + 1)
				b.ReportMetric(float64((time.Since(start)-setup).Nanoseconds())/float64(b.N), "ns/cmd")
			})
		}
	}
}
