// Package engine runs the provisioner's workers: each claims a VM that needs
// work, holds its lease while a Handler reconciles it, and records the
// outcome, retrying failures with backoff until it gives up. Handlers do one
// pass and report; retries and leases live here.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Result tells the engine what a reconcile pass achieved.
type Result struct {
	// Done means the VM is where the customer wants it; the engine then
	// clears needs_work unless the portal asked for more meanwhile.
	Done bool
	// RequeueAfter is when to look again when not Done (for example while
	// waiting for a guest to boot). It is not a failure and costs no attempt.
	RequeueAfter time.Duration
}

// Handler reconciles one VM: it observes the real world, acts idempotently
// and returns. A failure should be a *StepError naming the step.
type Handler interface {
	Reconcile(ctx context.Context, vm store.VM) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, vm store.VM) (Result, error)

// Reconcile calls f.
func (f HandlerFunc) Reconcile(ctx context.Context, vm store.VM) (Result, error) { return f(ctx, vm) }

// StepError is a failure at a named step of a reconcile pass; the step is
// what the customer is told went wrong.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }

func (e *StepError) Unwrap() error { return e.Err }

// Defaults for Config fields left zero.
const (
	DefaultWorkers     = 4
	DefaultLease       = time.Minute
	DefaultPoll        = 2 * time.Second
	DefaultMaxAttempts = 8
	// finishTimeout bounds recording an outcome, which runs even while
	// shutting down so the lease is released rather than left to expire.
	finishTimeout = 10 * time.Second
)

// Config tunes an Engine.
type Config struct {
	Workers     int           // parallel workers in this process
	Lease       time.Duration // how long a claim holds a VM; renewed every Lease/3
	Poll        time.Duration // idle wait between claims, jittered
	MaxAttempts int           // failed passes before the VM goes to state error
	Owner       string        // lease owner name; default hostname-pid-random
	// Backoff is the wait before the next pass after the n-th failure
	// (n from 1); default Backoff(2s, 5m).
	Backoff func(attempt int) time.Duration
	// MaxPollBackoff caps the wait between claims while they fail (the
	// database is out); default 30s.
	MaxPollBackoff time.Duration
}

// Backoff returns exponential backoff with jitter: about base, 2×base,
// 4×base … capped at limit, each drawn from [½, 1] of its nominal value so
// VMs that failed together do not retry together.
func Backoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration { return backoff.Nth(base, limit, attempt) }
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.MaxPollBackoff <= 0 {
		c.MaxPollBackoff = backoff.DefaultMax
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Owner == "" {
		c.Owner = defaultOwner()
	}
	if c.Backoff == nil {
		c.Backoff = Backoff(2*time.Second, 5*time.Minute)
	}
	return c
}

// defaultOwner names this process uniquely across hosts and restarts.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s-%d-%08x", host, os.Getpid(), rand.Uint32())
}

// Engine runs workers over the store's due VMs.
type Engine struct {
	st  *store.Store
	h   Handler
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	inFlight map[string]bool // VMs a worker of this engine is reconciling
}

// New builds an engine; zero Config fields take the defaults.
func New(st *store.Store, h Handler, cfg Config, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Engine{st: st, h: h, cfg: cfg, log: log.With("component", "engine", "owner", cfg.Owner), inFlight: map[string]bool{}}
}

// Owner is the name this engine's leases carry.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Serve runs the workers until ctx is cancelled. Handlers in flight then see
// their ctx cancelled; Serve waits for them to return and releases their
// VMs before it returns.
func (e *Engine) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range e.cfg.Workers {
		wg.Go(func() { e.work(ctx, e.log.With("worker", i)) })
	}
	wg.Wait()
	return nil
}

func (e *Engine) work(ctx context.Context, log *slog.Logger) {
	// While the database is out, claims fail: wait longer after each.
	claims := &backoff.Loop{Base: e.cfg.Poll, Max: e.cfg.MaxPollBackoff, What: "claim work", Log: log}
	for ctx.Err() == nil {
		// The claim is not cancelled midway: the database may have taken it
		// when the cancellation reaches it, and a claim this worker never
		// heard of would hold the VM until the lease runs out.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		vm, ok, err := e.st.ClaimVM(cctx, e.cfg.Owner, e.cfg.Lease)
		cancel()
		if ctx.Err() != nil && !ok {
			return
		}
		wait := claims.Next(ctx, err)
		if err != nil {
			sleep(ctx, wait)
			continue
		}
		if !ok {
			sleep(ctx, e.cfg.Poll/2+rand.N(e.cfg.Poll+1))
			continue
		}
		if ctx.Err() != nil {
			// Shutting down: hand the VM straight back.
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			if err := e.st.FinishWork(fctx, vm.ID, e.cfg.Owner, false, 0); err != nil {
				log.ErrorContext(fctx, "release claim at shutdown", "vm", vm.ID, "err", err)
			}
			fcancel()
			return
		}
		if !e.begin(vm.ID) {
			// The lease lapsed while another worker of this engine was
			// starved of CPU; the claim renewed it under the same owner,
			// so that worker still holds it and goes on.
			log.WarnContext(ctx, "claimed a VM this engine is already reconciling; leaving it to that worker", "vm", vm.ID)
			continue
		}
		e.run(ctx, vm, log.With("vm", vm.ID))
		e.end(vm.ID)
	}
}

func (e *Engine) begin(vmID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inFlight[vmID] {
		return false
	}
	e.inFlight[vmID] = true
	return true
}

func (e *Engine) end(vmID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.inFlight, vmID)
}

// run holds the lease on vm while the handler works, then records the outcome.
func (e *Engine) run(ctx context.Context, vm store.VM, log *slog.Logger) {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.renew(hctx, vm.ID, lost, cancel, log)
	}()
	start := time.Now()
	res, err := e.reconcile(hctx, vm, log)
	cancel()
	<-renewed

	select {
	case <-lost:
		log.WarnContext(ctx, "lease lost during reconcile; leaving the VM to its new owner")
		return
	default:
	}
	// Record the outcome even when shutting down, so the VM is released
	// now instead of when the lease expires.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer fcancel()
	switch {
	case err == nil:
		if ferr := e.st.FinishWork(fctx, vm.ID, e.cfg.Owner, res.Done, res.RequeueAfter); ferr != nil {
			log.ErrorContext(ctx, "finish work", "err", ferr)
			return
		}
		log.DebugContext(ctx, "reconciled", "done", res.Done, "requeue_after", res.RequeueAfter, "took", time.Since(start))
	case ctx.Err() != nil:
		// Shutdown interrupted the pass: not the VM's fault, so no attempt
		// is counted and any worker may pick it up at once.
		if ferr := e.st.FinishWork(fctx, vm.ID, e.cfg.Owner, false, 0); ferr != nil {
			log.ErrorContext(ctx, "release interrupted work", "err", ferr)
		}
	default:
		step := "reconcile"
		var se *StepError
		if errors.As(err, &se) && se.Step != "" {
			step = se.Step
			err = se.Err
		}
		gaveUp, ferr := e.st.FailAttempt(fctx, vm.ID, e.cfg.Owner, step, err, e.cfg.MaxAttempts, e.cfg.Backoff)
		if ferr != nil {
			log.ErrorContext(ctx, "record failed attempt", "step", step, "err", ferr)
			return
		}
		if gaveUp {
			log.ErrorContext(ctx, "gave up", "step", step, "attempts", vm.Attempts+1, "err", err)
		} else {
			log.WarnContext(ctx, "attempt failed", "step", step, "attempt", vm.Attempts+1, "err", err)
		}
	}
}

// reconcile calls the handler, turning a panic into a failed attempt so one
// bad VM cannot take the worker down. The panic goes to the log only; the
// customer sees "internal error".
func (e *Engine) reconcile(ctx context.Context, vm store.VM, log *slog.Logger) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errors.New("internal error")
		}
	}()
	return e.h.Reconcile(ctx, vm)
}

// renew extends the lease every Lease/3 until ctx ends; when the lease is
// lost it closes lost and cancels the handler, whose work another worker
// now owns.
func (e *Engine) renew(ctx context.Context, vmID string, lost chan<- struct{}, cancel context.CancelFunc, log *slog.Logger) {
	t := time.NewTicker(max(e.cfg.Lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := e.st.RenewLease(ctx, vmID, e.cfg.Owner, e.cfg.Lease)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrConflict):
			close(lost)
			cancel()
			return
		case ctx.Err() == nil:
			// A database hiccup: keep trying while the lease lasts.
			log.WarnContext(ctx, "renew lease", "err", err)
		}
	}
}

// Timeline is where handlers record a VM's progress; *store.Store is one.
type Timeline interface {
	StartStep(ctx context.Context, vmID, step, message string) (string, error)
	FinishStep(ctx context.Context, stepID, state, message, detail string) error
}

// Step runs fn as one step of a reconcile pass, shown on the VM's timeline
// with message while it runs. A failure is returned as a *StepError naming
// step, and its text is kept on the timeline for staff only.
func Step(ctx context.Context, tl Timeline, vmID, step, message string, fn func(ctx context.Context) error) error {
	id, err := tl.StartStep(ctx, vmID, step, message)
	if err != nil {
		return &StepError{Step: step, Err: err}
	}
	// The outcome is recorded even when ctx was cancelled during fn.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		if ferr := tl.FinishStep(fctx, id, store.StepFailed, "", err.Error()); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return &StepError{Step: step, Err: err}
	}
	if err := tl.FinishStep(fctx, id, store.StepDone, "", ""); err != nil {
		return &StepError{Step: step, Err: err}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
