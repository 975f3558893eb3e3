package rack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/rack"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var staff = store.Actor{UserID: "staff-1", Email: "ops@isp.example", IP: "192.0.2.9"}

func eachDB(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	open := func(t *testing.T, url string) *store.Store {
		ctx := context.Background()
		s, err := store.Open(ctx, url, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, filepath.Join(t.TempDir(), "fibrix.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, pgtest.DSN(t)))
	})
}

// powerEvents lists a machine's power events as "kind: message".
func powerEvents(t *testing.T, s *store.Store, id string) []string {
	t.Helper()
	d, err := s.GetMachine(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range d.Events {
		if strings.HasPrefix(e.Kind, "power_") && e.Kind != store.EventPowerRequested {
			out = append(out, e.Kind+": "+e.Message)
		}
	}
	return out
}

// TestWorkerVirsh drives a domain of libvirt's test driver (inside the real
// libvirtd) as a machine: commissioning powers it on, a staff request
// powers it off, and a start behind the worker's back shows as drift.
func TestWorkerVirsh(t *testing.T) {
	libvirttest.Ensure(t)
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// The test driver's state lives while a connection to it is open.
		c, err := hypervisor.Dial(ctx, hypervisor.Config{URI: "test:///default"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dom := "fibrix-rack-" + uuid.NewString()[:8]
		if err := c.Define(ctx, hypervisor.DomainSpec{Name: dom, UUID: uuid.NewString(), VCPUs: 1, MemoryMiB: 64, Type: hypervisor.TypeQEMU}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = c.Destroy(context.Background(), dom)
			_ = c.Undefine(context.Background(), dom)
		}()
		domState := func() hypervisor.DomainState {
			t.Helper()
			st, err := c.State(ctx, dom)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}

		m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:aa:00:01"},
			PowerType: store.PowerVirsh, PowerParams: map[string]string{"uri": "test:///default", "domain": dom}})
		if err != nil {
			t.Fatal(err)
		}
		ghost, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-2", MACs: []string{"52:54:00:aa:00:02"},
			PowerType: store.PowerVirsh, PowerParams: map[string]string{"uri": "test:///default", "domain": dom + "-missing"}})
		if err != nil {
			t.Fatal(err)
		}
		w := rack.NewWorker(s, rack.Config{PollInterval: time.Nanosecond}, nil)
		pass := func() {
			t.Helper()
			if err := w.Pass(ctx); err != nil {
				t.Fatalf("pass: %v", err)
			}
		}
		machine := func(id string) store.Machine {
			t.Helper()
			d, err := s.GetMachine(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return d.Machine
		}

		pass() // first poll: off, no drift from unknown
		if got := machine(m.ID).PowerState; got != "off" {
			t.Fatalf("power state after first poll = %q; want off", got)
		}

		for _, id := range []string{m.ID, ghost.ID} {
			if _, err := s.MachineAction(ctx, staff, id, store.MachineCommission, store.MachineActionInput{}); err != nil {
				t.Fatal(err)
			}
		}
		pass()
		pass() // nothing left to do: no second power-on
		if st := domState(); st != hypervisor.Running {
			t.Fatalf("domain is %s after commission; want running", st)
		}
		if got := machine(m.ID).PowerState; got != "on" {
			t.Errorf("power state = %q; want on", got)
		}
		want := []string{"power_done: powered on to boot from the network"}
		if diff := cmp.Diff(want, powerEvents(t, s, m.ID)); diff != "" {
			t.Errorf("events after commission (-want +got):\n%s", diff)
		}
		ge := powerEvents(t, s, ghost.ID)
		if len(ge) != 1 || !strings.HasPrefix(ge[0], "power_failed: network boot failed: ") || !strings.Contains(ge[0], dom+"-missing") {
			t.Errorf("events of the machine without a domain = %q; want one power_failed naming the domain", ge)
		}

		if _, err := s.MachineAction(ctx, staff, m.ID, store.MachinePowerOff, store.MachineActionInput{Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		pass()
		if st := domState(); st != hypervisor.ShutOff {
			t.Fatalf("domain is %s after power_off; want shut-off", st)
		}
		want = append(want, "power_done: powered off")
		if diff := cmp.Diff(want, powerEvents(t, s, m.ID)); diff != "" {
			t.Errorf("events after power_off (-want +got):\n%s", diff)
		}

		// Someone starts the machine behind our back.
		if err := c.Start(ctx, dom); err != nil {
			t.Fatal(err)
		}
		pass()
		if got := machine(m.ID).PowerState; got != "on" {
			t.Errorf("power state after drift = %q; want on", got)
		}
		want = append(want, "power_drift: power is on but was off with no command to change it")
		if diff := cmp.Diff(want, powerEvents(t, s, m.ID)); diff != "" {
			t.Errorf("events after drift (-want +got):\n%s", diff)
		}
		pass() // drift is recorded once
		if diff := cmp.Diff(want, powerEvents(t, s, m.ID)); diff != "" {
			t.Errorf("events after another poll (-want +got):\n%s", diff)
		}
	})
}

// TestMachinesToken checks the boot stack gets a fresh token for a
// commissioning machine on each fetch, and that only the latest is
// accepted by the agent endpoint's store call.
func TestMachinesToken(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:aa:00:01"}})
		if err != nil {
			t.Fatal(err)
		}
		ms := rack.NewMachines(s)
		b, err := ms.BootState(ctx, "52:54:00:AA:00:01")
		if err != nil {
			t.Fatal(err)
		}
		if !b.Known || b.State != store.MachineNew || b.AgentToken != "" {
			t.Errorf("new machine boot = %+v; want known, new, no token", b)
		}
		if u, err := ms.BootState(ctx, "52:54:00:aa:00:99"); err != nil || u.Known {
			t.Errorf("unknown MAC = %+v, %v; want unknown", u, err)
		}
		if _, err := s.MachineAction(ctx, staff, m.ID, store.MachineCommission, store.MachineActionInput{}); err != nil {
			t.Fatal(err)
		}
		first, err := ms.BootState(ctx, "52:54:00:aa:00:01")
		if err != nil {
			t.Fatal(err)
		}
		second, err := ms.BootState(ctx, "52:54:00:aa:00:01")
		if err != nil {
			t.Fatal(err)
		}
		if first.AgentToken == "" || second.AgentToken == "" || first.AgentToken == second.AgentToken {
			t.Fatalf("tokens %q, %q: want two different non-empty ones", first.AgentToken, second.AgentToken)
		}
		inv := `{"cpu":{"model":"EPYC","cores":8,"threads":16},"memory_mib":4096,"disks":[{"name":"sda","size_bytes":1000}],"nics":[{"name":"eth0","mac":"52:54:00:aa:00:01","link":true}]}`
		if _, err := s.AgentReport(ctx, first.AgentToken, "commission", inv, "EPYC", 8, 4096); err == nil {
			t.Error("the rotated-out token was accepted")
		}
		got, err := s.AgentReport(ctx, second.AgentToken, "commission", inv, "EPYC", 8, 4096)
		if err != nil {
			t.Fatalf("report with the latest token: %v", err)
		}
		if got.State != store.MachineReady {
			t.Errorf("state after report = %s; want ready", got.State)
		}
	})
}

// TestWorkerManualAndStale checks a manual machine's power request ends as
// a failure telling staff to act by hand, and that a request older than
// RequestMaxAge is left alone.
func TestWorkerManualAndStale(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:aa:00:01"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MachineAction(ctx, staff, m.ID, store.MachinePowerOn, store.MachineActionInput{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		stale := rack.NewWorker(s, rack.Config{RequestMaxAge: time.Millisecond}, nil)
		if err := stale.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if got := powerEvents(t, s, m.ID); len(got) != 0 {
			t.Errorf("a stale request was carried out: %q", got)
		}
		if err := rack.NewWorker(s, rack.Config{}, nil).Pass(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{"power_failed: power on failed: this machine is powered by hand: power on it at the rack, then confirm its power state"}
		if diff := cmp.Diff(want, powerEvents(t, s, m.ID)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestWorkerPhaseTimeout checks a pass fails a machine stuck in
// commissioning past its timeout.
func TestWorkerPhaseTimeout(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:aa:00:01"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MachineAction(ctx, staff, m.ID, store.MachineCommission, store.MachineActionInput{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if err := rack.NewWorker(s, rack.Config{Commissioning: time.Millisecond}, nil).Pass(ctx); err != nil {
			t.Fatal(err)
		}
		d, err := s.GetMachine(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != store.MachineFailedCommissioning {
			t.Errorf("state = %s; want %s", d.State, store.MachineFailedCommissioning)
		}
	})
}

// TestWorkerStalePhase checks a phase entered longer ago than
// RequestMaxAge powers nothing.
func TestWorkerStalePhase(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:aa:00:01"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MachineAction(ctx, staff, m.ID, store.MachineCommission, store.MachineActionInput{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		if err := rack.NewWorker(s, rack.Config{RequestMaxAge: time.Millisecond}, nil).Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if got := powerEvents(t, s, m.ID); len(got) != 0 {
			t.Errorf("a stale phase entry powered the machine: %q", got)
		}
	})
}
