package rack_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/power"
	"github.com/fibrixcloud/fibrix/provisioner/rack"
	"github.com/fibrixcloud/fibrix/provisioner/secret"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var staff = store.Actor{UserID: "staff-1", Email: "ops@isp.example", IP: "192.0.2.9"}

func eachDB(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	eachURL(t, func(t *testing.T, url string) { fn(t, openStore(t, url)) })
}

// eachURL runs fn with the URL of a fresh SQLite file and of a fresh
// PostgreSQL database, for tests that open several stores on one database
// as several processes would.
func eachURL(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, filepath.Join(t.TempDir(), "fibrix.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, pgtest.DSN(t))
	})
}

// openStore opens and migrates the database at url.
func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
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

// countingBMC stands in for one machine's BMC in the claim tests, beside
// the real-BMC tests above and below: it counts what it is asked and
// notices two requests at once.
type countingBMC struct {
	mu                      sync.Mutex
	busy, overlaps          int
	cycles, bootSets, reads int
	on                      bool
	// hold, when set, makes a cycle wait for its context's end after
	// closing started.
	hold    bool
	started chan struct{}
}

func (b *countingBMC) enter() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy++
	if b.busy > 1 {
		b.overlaps++
	}
}

func (b *countingBMC) leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy--
}

func (b *countingBMC) counts() (cycles, bootSets, overlaps int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cycles, b.bootSets, b.overlaps
}

type countingDriver struct{ b *countingBMC }

func (d countingDriver) PowerState(ctx context.Context) (power.State, error) {
	d.b.enter()
	defer d.b.leave()
	time.Sleep(5 * time.Millisecond) // a BMC takes a while: widen the window for overlaps
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.reads++
	if d.b.on {
		return power.On, nil
	}
	return power.Off, nil
}

func (d countingDriver) PowerCycle(ctx context.Context) error {
	d.b.enter()
	defer d.b.leave()
	if d.b.hold {
		close(d.b.started)
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(20 * time.Millisecond)
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.cycles++
	d.b.on = true
	return nil
}

func (d countingDriver) SetBootDevice(ctx context.Context, dev power.BootDevice, efi, persistent bool) error {
	d.b.enter()
	defer d.b.leave()
	time.Sleep(5 * time.Millisecond)
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.bootSets++
	return nil
}

// countingDrivers hands each machine (by its address parameter) its BMC.
func countingDrivers(bmcs map[string]*countingBMC) rack.DriverFunc {
	return func(cfg power.Config, _ *slog.Logger) (power.Stater, error) {
		b, ok := bmcs[cfg.Params["address"]]
		if !ok {
			return nil, fmt.Errorf("no BMC at %q", cfg.Params["address"])
		}
		return countingDriver{b}, nil
	}
}

func enlistIPMI(t *testing.T, s *store.Store, name, mac, address string) store.Machine {
	t.Helper()
	m, err := s.EnlistMachine(context.Background(), staff, store.MachineInput{Name: name, MACs: []string{mac},
		PowerType: store.PowerIPMI, PowerParams: map[string]string{"address": address}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func commission(t *testing.T, s *store.Store, id string) {
	t.Helper()
	if _, err := s.MachineAction(context.Background(), staff, id, store.MachineCommission, store.MachineActionInput{}); err != nil {
		t.Fatal(err)
	}
}

// listedTogether is a worker's real store whose first PowerJobs returns
// only once every worker has listed its jobs, so that all of them race for
// the same jobs.
type listedTogether struct {
	*store.Store
	all  *sync.WaitGroup
	once sync.Once
}

func (l *listedTogether) PowerJobs(ctx context.Context, since time.Time) ([]store.PowerJob, error) {
	jobs, err := l.Store.PowerJobs(ctx, since)
	l.once.Do(func() {
		l.all.Done()
		l.all.Wait()
	})
	return jobs, err
}

// TestWorkersClaimOnce runs workers of several processes (each with its own
// connection pool) on one database at once, as rack agents of one region
// do: the machine entering commissioning is power cycled exactly once, and
// its BMC never gets two requests at once, polls included.
func TestWorkersClaimOnce(t *testing.T) {
	eachURL(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const workers, passes = 6, 3
		stores := make([]*store.Store, workers)
		for i := range stores {
			stores[i] = openStore(t, url)
		}
		m := enlistIPMI(t, stores[0], "node-1", "52:54:00:aa:01:01", "bmc-1")
		commission(t, stores[0], m.ID)
		bmc := &countingBMC{}
		drivers := countingDrivers(map[string]*countingBMC{"bmc-1": bmc})

		var (
			wg     sync.WaitGroup
			listed sync.WaitGroup
			mu     sync.Mutex
			errs   []error
			start  = make(chan struct{})
		)
		listed.Add(workers)
		for i := range workers {
			st := &listedTogether{Store: stores[i], all: &listed}
			w := rack.NewWorker(st, rack.Config{WorkerID: fmt.Sprintf("worker-%d", i), PollInterval: time.Nanosecond, NewDriver: drivers}, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range passes {
					if err := w.Pass(ctx); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s: %w", w.ID(), err))
						mu.Unlock()
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(errs) != 0 {
			t.Fatalf("passes failed: %v", errs)
		}
		if jobs, err := stores[0].PowerJobs(ctx, time.Now().Add(-time.Hour)); err != nil || len(jobs) != 0 {
			t.Errorf("jobs left = %+v, %v; want none", jobs, err)
		}
		cycles, bootSets, overlaps := bmc.counts()
		if cycles != 1 || bootSets != 1 {
			t.Errorf("BMC saw %d power cycles and %d boot device sets; want one of each", cycles, bootSets)
		}
		if overlaps != 0 {
			t.Errorf("the BMC got a request while busy with another %d times", overlaps)
		}
		want := []string{"power_done: next boot set to PXE and powered on"}
		if diff := cmp.Diff(want, powerEvents(t, stores[0], m.ID)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestWorkerTakesOverExpiredClaim checks a worker carries out a job whose
// claimant died (its lease ran out), and leaves alone a job another live
// worker holds, not even polling that machine.
func TestWorkerTakesOverExpiredClaim(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		dead := enlistIPMI(t, s, "node-1", "52:54:00:aa:02:01", "bmc-1")
		busy := enlistIPMI(t, s, "node-2", "52:54:00:aa:02:02", "bmc-2")
		commission(t, s, dead.ID)
		commission(t, s, busy.ID)
		jobs, err := s.PowerJobs(ctx, time.Now().Add(-time.Hour))
		if err != nil || len(jobs) != 2 {
			t.Fatalf("jobs = %+v, %v; want two", jobs, err)
		}
		for _, j := range jobs {
			owner, lease := "dead-worker", time.Millisecond
			if j.Machine.ID == busy.ID {
				owner, lease = "busy-worker", time.Hour
			}
			if _, ok, err := s.ClaimPowerJob(ctx, j.EventID, owner, lease, time.Now().Add(-time.Hour)); err != nil || !ok {
				t.Fatalf("claim by %s = %v, %v", owner, ok, err)
			}
		}
		time.Sleep(20 * time.Millisecond) // dead-worker's lease runs out

		b1, b2 := &countingBMC{}, &countingBMC{}
		w := rack.NewWorker(s, rack.Config{WorkerID: "worker-1", PollInterval: time.Nanosecond,
			NewDriver: countingDrivers(map[string]*countingBMC{"bmc-1": b1, "bmc-2": b2})}, nil)
		if err := w.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if cycles, _, _ := b1.counts(); cycles != 1 {
			t.Errorf("machine of the dead worker cycled %d times; want 1", cycles)
		}
		if diff := cmp.Diff([]string{"power_done: next boot set to PXE and powered on"}, powerEvents(t, s, dead.ID)); diff != "" {
			t.Errorf("events of the taken-over job (-want +got):\n%s", diff)
		}
		b2.mu.Lock()
		untouched := b2.cycles == 0 && b2.bootSets == 0 && b2.reads == 0
		b2.mu.Unlock()
		if !untouched {
			t.Errorf("the machine another worker holds was touched: %+v", b2)
		}
		if got := powerEvents(t, s, busy.ID); len(got) != 0 {
			t.Errorf("events of the held job: %q", got)
		}
	})
}

// TestWorkerGivesBackOnShutdown checks a worker stopped mid-command gives
// its job back, so another worker carries it out at once instead of after
// the lease.
func TestWorkerGivesBackOnShutdown(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		m := enlistIPMI(t, s, "node-1", "52:54:00:aa:03:01", "bmc-1")
		commission(t, s, m.ID)
		stuck := &countingBMC{hold: true, started: make(chan struct{})}
		w1 := rack.NewWorker(s, rack.Config{WorkerID: "worker-1", NewDriver: countingDrivers(map[string]*countingBMC{"bmc-1": stuck})}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w1.Pass(ctx) }()
		<-stuck.started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("pass of the stopped worker = %v; want cancelled", err)
		}
		if got := powerEvents(t, s, m.ID); len(got) != 0 {
			t.Fatalf("the stopped worker recorded %q", got)
		}

		b := &countingBMC{}
		w2 := rack.NewWorker(s, rack.Config{WorkerID: "worker-2", NewDriver: countingDrivers(map[string]*countingBMC{"bmc-1": b})}, nil)
		if err := w2.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		if cycles, _, _ := b.counts(); cycles != 1 {
			t.Errorf("the next worker cycled %d times; want 1", cycles)
		}
		if diff := cmp.Diff([]string{"power_done: next boot set to PXE and powered on"}, powerEvents(t, s, m.ID)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestWorkerIPMIBootMode commissions two machines behind a real BMC
// (ipmi_sim), one with boot_mode=uefi and one with the default: each gets
// the next boot set to PXE, in EFI mode only for the first, and is powered
// on. ipmitool and the BMC's chassis hook see the PXE boot and the power;
// the BMC's debug log shows the EFI bit of each request it received.
func TestWorkerIPMIBootMode(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		bmc := startBMC(t, "bmc1")
		box, err := secret.SharedBox(ctx, s, secret.BMCKeySetting)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := box.Seal(simPassword)
		if err != nil {
			t.Fatal(err)
		}
		enlist := func(name, mac, mode string) store.Machine {
			t.Helper()
			p := bmc.params()
			if mode != "" {
				p["boot_mode"] = mode
			}
			m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: name, MACs: []string{mac}, PowerType: store.PowerIPMI,
				PowerParams: p, PowerSecretSealed: sealed})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		uefi := enlist("node-uefi", "52:54:00:aa:04:01", "UEFI")
		bios := enlist("node-bios", "52:54:00:aa:04:02", "")
		w := rack.NewWorker(s, rack.Config{}, nil)
		pxe := byte(1)

		commission(t, s, uefi.ID)
		if err := w.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		bmc.waitCall(t, "set boot pxe")
		bmc.waitCall(t, "set power 1")
		if diff := cmp.Diff([]bootFlags{{Valid: true, EFI: true, Device: pxe}}, bmc.bootFlagWrites(t)); diff != "" {
			t.Errorf("boot flags the BMC received (-want +got):\n%s", diff)
		}
		if out := bmc.Ipmitool(t, "chassis", "bootparam", "get", "5"); !strings.Contains(out, "Force PXE") {
			t.Errorf("ipmitool chassis bootparam get 5:\n%s", out)
		}
		if out := bmc.Ipmitool(t, "chassis", "power", "status"); !strings.Contains(out, "Chassis Power is on") {
			t.Errorf("ipmitool chassis power status: %s", out)
		}
		want := []string{"power_done: next boot set to PXE (UEFI) and powered on"}
		if diff := cmp.Diff(want, powerEvents(t, s, uefi.ID)); diff != "" {
			t.Errorf("events of the UEFI machine (-want +got):\n%s", diff)
		}

		commission(t, s, bios.ID)
		if err := w.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		flags := []bootFlags{{Valid: true, EFI: true, Device: pxe}, {Valid: true, EFI: false, Device: pxe}}
		if diff := cmp.Diff(flags, bmc.bootFlagWrites(t)); diff != "" {
			t.Errorf("boot flags the BMC received (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"power_done: next boot set to PXE and powered on"}, powerEvents(t, s, bios.ID)); diff != "" {
			t.Errorf("events of the BIOS machine (-want +got):\n%s", diff)
		}
	})
}
