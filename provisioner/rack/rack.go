// Package rack is the provisioner's side of bare metal: it tells the boot
// stack what each machine should boot, and its worker carries out power
// commands, watches power state, reads BMC sensors and fails machines stuck
// in a phase.
package rack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/netboot"
	"github.com/fibrixcloud/fibrix/provisioner/power"
	"github.com/fibrixcloud/fibrix/provisioner/secret"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// BootStore is what Machines needs from the database.
type BootStore interface {
	BootState(ctx context.Context, mac string) (store.MachineBootState, error)
	IssueAgentToken(ctx context.Context, machineID string) (string, error)
}

// Machines answers the boot stack's questions from the database.
type Machines struct {
	st BootStore
}

// NewMachines returns the boot stack's view of the machines in st.
func NewMachines(st BootStore) *Machines { return &Machines{st: st} }

// BootState says what a MAC's machine should boot. For a machine whose
// boot environment reports back it issues a fresh one-time token, so every
// fetch of the boot script rotates the token and only the latest works.
func (m *Machines) BootState(ctx context.Context, mac string) (netboot.Boot, error) {
	b, err := m.st.BootState(ctx, mac)
	if err != nil || !b.Known {
		return netboot.Boot{}, err
	}
	out := netboot.Boot{Known: true, MachineID: b.MachineID, Name: b.Name, State: b.State, Erase: b.Erase}
	switch b.State {
	case store.MachineCommissioning, store.MachineDeploying, store.MachineReleasing:
		tok, err := m.st.IssueAgentToken(ctx, b.MachineID)
		if errors.Is(err, store.ErrInvalidTransition) {
			// It left the phase between the two reads: boot what it is now.
			return m.BootState(ctx, mac)
		}
		if err != nil {
			return netboot.Boot{}, err
		}
		out.AgentToken = tok
	}
	return out, nil
}

// WorkStore is what the Worker needs from the database.
type WorkStore interface {
	PowerJobs(ctx context.Context, since time.Time) ([]store.PowerJob, error)
	ClaimPowerJob(ctx context.Context, eventID, owner string, lease time.Duration, since time.Time) (store.PowerJob, bool, error)
	ReleasePowerJob(ctx context.Context, eventID, machineID, owner string) error
	RecordPowerResult(ctx context.Context, r store.PowerResult) error
	MachinesToPoll(ctx context.Context, before time.Time) ([]store.Machine, error)
	LeaseMachine(ctx context.Context, machineID, owner string, lease time.Duration) (bool, error)
	ReleaseMachine(ctx context.Context, machineID, owner string) error
	RecordPowerState(ctx context.Context, machineID, owner, state string) (bool, error)
	RecordSensors(ctx context.Context, machineID, owner string, readings []store.SensorReading) error
	ExpireStaleMachines(ctx context.Context, at time.Time, commissioning, deploying, releasing time.Duration) (int, error)
	secret.Settings
}

// DriverFunc builds one machine's power driver; power.New in production.
type DriverFunc func(cfg power.Config, log *slog.Logger) (power.Stater, error)

// Config is how the Worker behaves; zero values take the defaults.
type Config struct {
	// Interval is how often the worker looks for work (default 5s).
	Interval time.Duration
	// PollInterval is how often each machine's power state, and its
	// sensors where the driver reads them, are read (default 1m).
	PollInterval time.Duration
	// RequestMaxAge is how old a staff power request or a phase entry may
	// be and still be acted on (default 10m): work asked for while no
	// worker ran must not switch a machine off or reboot it hours later.
	RequestMaxAge time.Duration
	// Phase timeouts (defaults 30m, 60m, 30m).
	Commissioning, Deploying, Releasing time.Duration
	// CommandTimeout bounds one power command (default 2m).
	CommandTimeout time.Duration
	// WorkerID names this worker in the claims it takes (default
	// hostname-pid-random); every worker on a database needs its own.
	WorkerID string
	// Lease is how long a claim on a power job, and on the machine's BMC,
	// holds without a result (default CommandTimeout+1m). A worker that
	// dies mid-job leaves its claim to expire, and another worker then
	// takes the job over. It must outlast a command: a shorter one is
	// raised to the default.
	Lease time.Duration
	// NewDriver builds drivers (default power.New).
	NewDriver DriverFunc
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 5*time.Second)
	def(&c.PollInterval, time.Minute)
	def(&c.RequestMaxAge, 10*time.Minute)
	def(&c.Commissioning, 30*time.Minute)
	def(&c.Deploying, 60*time.Minute)
	def(&c.Releasing, 30*time.Minute)
	def(&c.CommandTimeout, 2*time.Minute)
	if c.Lease <= c.CommandTimeout {
		c.Lease = c.CommandTimeout + time.Minute
	}
	if c.WorkerID == "" {
		c.WorkerID = defaultWorkerID()
	}
	if c.NewDriver == nil {
		c.NewDriver = power.New
	}
}

// defaultWorkerID names this process uniquely across hosts and restarts.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s-%d-%08x", host, os.Getpid(), rand.Uint32())
}

// Worker carries out machines' power work.
type Worker struct {
	st  WorkStore
	cfg Config
	log *slog.Logger
	box *secret.Box // loaded on first need
}

// NewWorker returns a worker over st.
func NewWorker(st WorkStore, cfg Config, log *slog.Logger) *Worker {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{st: st, cfg: cfg, log: log.With("worker", cfg.WorkerID)}
}

// ID is the name this worker's claims carry.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Serve runs passes until ctx is cancelled.
func (w *Worker) Serve(ctx context.Context) error {
	passes := &backoff.Loop{Base: w.cfg.Interval, What: "machine work pass", Log: w.log}
	for {
		err := w.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if !backoff.Sleep(ctx, passes.Next(ctx, err)) {
			return nil
		}
	}
}

// Pass does one round: pending power commands, due power polls and phase
// timeouts.
func (w *Worker) Pass(ctx context.Context) error {
	at := time.Now()
	since := at.Add(-w.cfg.RequestMaxAge)
	jobs, err := w.st.PowerJobs(ctx, since)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if err := w.run(ctx, j, since); err != nil {
			return err
		}
	}
	due, err := w.st.MachinesToPoll(ctx, at.Add(-w.cfg.PollInterval))
	if err != nil {
		return err
	}
	for _, m := range due {
		if err := w.poll(ctx, m); err != nil {
			return err
		}
	}
	n, err := w.st.ExpireStaleMachines(ctx, at, w.cfg.Commissioning, w.cfg.Deploying, w.cfg.Releasing)
	if err != nil {
		return err
	}
	if n > 0 {
		w.log.Info("machines timed out of their phase", "count", n)
	}
	return nil
}

// driver builds m's power driver; the caller closes it with closeDriver.
func (w *Worker) driver(ctx context.Context, m store.Machine, log *slog.Logger) (power.Stater, error) {
	var pw string
	if m.PowerSecret != "" {
		if w.box == nil {
			box, err := secret.SharedBox(ctx, w.st, secret.BMCKeySetting)
			if err != nil {
				return nil, err
			}
			w.box = box
		}
		var err error
		if pw, err = w.box.Open(m.PowerSecret); err != nil {
			return nil, fmt.Errorf("the stored BMC password cannot be decrypted; enter it again: %w", err)
		}
	}
	params := m.Params()
	delete(params, store.BootModeParam) // the worker's, not the driver's
	return w.cfg.NewDriver(power.Config{Type: m.PowerType, Params: params, Secret: pw}, log)
}

func closeDriver(d power.Stater) {
	if c, ok := d.(io.Closer); ok {
		_ = c.Close()
	}
}

// releaseTimeout bounds giving a claim back while shutting down.
const releaseTimeout = 10 * time.Second

// run claims one job, carries it out and records its result; only a
// failure to claim or record is returned, the driver's errors go to the
// timeline. A job another worker holds is left to it.
func (w *Worker) run(ctx context.Context, listed store.PowerJob, since time.Time) error {
	j, ok, err := w.st.ClaimPowerJob(ctx, listed.EventID, w.cfg.WorkerID, w.cfg.Lease, since)
	if err != nil {
		return err
	}
	log := w.log.With("machine", listed.Machine.Name, "action", listed.Action)
	if !ok {
		log.Debug("power job taken by another worker or no longer wanted")
		return nil
	}
	if j.TakenOverFrom != "" {
		log.Warn("taking over a power job whose worker stopped before finishing it", "from", j.TakenOverFrom)
	}
	res := store.PowerResult{MachineID: j.Machine.ID, EventID: j.EventID, Owner: w.cfg.WorkerID, OK: true}
	// Everything that talks to the BMC runs within CommandTimeout, which
	// the claim's lease outlasts.
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CommandTimeout)
	d, err := w.driver(cctx, j.Machine, log)
	if err == nil {
		res.Message, err = execute(cctx, d, j.Action, j.Machine.Params()[store.BootModeParam] == store.BootModeUEFI)
		if err == nil {
			if st, serr := d.PowerState(cctx); serr == nil && st != power.Unknown {
				res.State = string(st)
			}
		}
		closeDriver(d)
	}
	cancel()
	if ctx.Err() != nil {
		// Shutting down: give the job back so that another worker (or the
		// next start) carries it out without waiting for the lease.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer rcancel()
		if rerr := w.st.ReleasePowerJob(rctx, j.EventID, j.Machine.ID, w.cfg.WorkerID); rerr != nil {
			log.Warn("giving back a power job failed; it waits for its lease to expire", "err", rerr)
		}
		return ctx.Err()
	}
	if err != nil {
		res.OK, res.Message = false, describe(j.Action)+" failed: "+err.Error()
		log.Warn("power command failed", "err", err)
	} else {
		log.Info("power command done", "power_state", res.State)
	}
	if err := w.st.RecordPowerResult(ctx, res); err != nil {
		if errors.Is(err, store.ErrConflict) {
			log.Warn("power result not recorded: the job's claim was lost", "err", err)
			return nil
		}
		return err
	}
	return nil
}

func describe(action string) string {
	switch action {
	case store.PowerPXECycle:
		return "network boot"
	case store.MachinePowerOn:
		return "power on"
	case store.MachinePowerOff:
		return "power off"
	case store.MachinePowerCycle:
		return "power cycle"
	}
	return action
}

// execute carries out one power action with the driver's abilities and
// says what it did; efi boots from the network in UEFI mode.
func execute(ctx context.Context, d power.Stater, action string, efi bool) (string, error) {
	onOff, _ := d.(power.OnOffer)
	cycle := func() error {
		if c, ok := d.(power.Cycler); ok {
			return c.PowerCycle(ctx)
		}
		if onOff == nil {
			return errors.New("this power driver cannot switch the machine on")
		}
		// Without a cycle: switch on when off, else off and on.
		if st, err := d.PowerState(ctx); err == nil && st == power.On {
			if err := onOff.PowerOff(ctx); err != nil {
				return err
			}
		}
		return onOff.PowerOn(ctx)
	}
	switch action {
	case store.PowerPXECycle:
		msg := "powered on to boot from the network"
		if b, ok := d.(power.BootDeviceSetter); ok {
			mode := ""
			if efi {
				mode = " (UEFI)"
			}
			if err := b.SetBootDevice(ctx, power.PXE, efi, false); err != nil {
				return "", fmt.Errorf("set next boot to PXE%s: %w", mode, err)
			}
			msg = "next boot set to PXE" + mode + " and powered on"
		}
		return msg, cycle()
	case store.MachinePowerCycle:
		return "power cycled", cycle()
	case store.MachinePowerOn, store.MachinePowerOff:
		if onOff == nil {
			return "", errors.New("this power driver cannot switch the machine on and off")
		}
		if action == store.MachinePowerOn {
			return "powered on", onOff.PowerOn(ctx)
		}
		return "powered off", onOff.PowerOff(ctx)
	}
	return "", fmt.Errorf("unknown power action %q", action)
}

// poll reads m's power state under the machine's lease and records it,
// with drift when it changed behind our back; then, in the same session,
// its sensors if the driver reads them. A machine another worker is
// talking to is skipped.
func (w *Worker) poll(ctx context.Context, m store.Machine) error {
	log := w.log.With("machine", m.Name)
	ok, err := w.st.LeaseMachine(ctx, m.ID, w.cfg.WorkerID, w.cfg.Lease)
	if err != nil || !ok {
		return err
	}
	var (
		state string
		sr    sensorRead
	)
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CommandTimeout)
	d, err := w.driver(cctx, m, log)
	if err == nil {
		var st power.State
		st, err = d.PowerState(cctx)
		if err == nil {
			if st != power.Unknown {
				state = string(st)
			}
			// Only a BMC that answered is asked again: a dead one would
			// hold the poll for another timeout.
			if r, ok := d.(power.SensorReader); ok {
				sr.asked = true
				sr.sensors, sr.err = r.Sensors(cctx)
			}
		}
		closeDriver(d)
	}
	cancel()
	if ctx.Err() != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer rcancel()
		if rerr := w.st.ReleaseMachine(rctx, m.ID, w.cfg.WorkerID); rerr != nil {
			log.Warn("releasing the machine failed; it waits for its lease to expire", "err", rerr)
		}
		return ctx.Err()
	}
	if err != nil {
		// Marked as checked all the same, so a dead BMC is asked once per
		// poll interval, not on every pass.
		log.Warn("reading power state failed", "err", err)
	}
	if sr.asked {
		w.recordSensors(ctx, m, log, sr)
	}
	drift, err := w.st.RecordPowerState(ctx, m.ID, w.cfg.WorkerID, state)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile
		}
		if errors.Is(err, store.ErrConflict) {
			log.Warn("power state not recorded: the machine's lease was lost", "err", err)
			return nil
		}
		return err
	}
	if drift {
		log.Warn("power state drifted", "power_state", state, "was", m.PowerState)
	}
	return nil
}

// sensorRead is what a poll got from the driver's SensorReader.
type sensorRead struct {
	asked   bool
	sensors []power.Sensor
	err     error
}

// recordSensors stores a poll's sensor readings while the worker still
// holds the machine's lease. Sensors are secondary to the power state: a
// failed read or record is logged and leaves the previous readings, with
// their time, as they were; the poll goes on.
func (w *Worker) recordSensors(ctx context.Context, m store.Machine, log *slog.Logger, sr sensorRead) {
	if sr.err != nil {
		log.Warn("reading sensors failed; the previous readings stay", "err", sr.err)
		return
	}
	if len(sr.sensors) > store.MaxSensors {
		log.Warn("the BMC has more sensors than are kept; recording the first ones", "sensors", len(sr.sensors), "kept", store.MaxSensors)
		sr.sensors = sr.sensors[:store.MaxSensors]
	}
	readings := make([]store.SensorReading, len(sr.sensors))
	for i, s := range sr.sensors {
		readings[i] = store.SensorReading{Name: s.Name, Type: s.Type, Value: s.Value, Unit: s.Unit, Status: s.Status}
	}
	if err := w.st.RecordSensors(ctx, m.ID, w.cfg.WorkerID, readings); err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn("sensor readings not recorded; the previous readings stay", "err", err)
	}
}
