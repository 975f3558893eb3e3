package engine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/engine"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Environment of the crash-resume helper process (see TestHelperWorker).
const (
	helperDBEnv     = "FIBRIX_ENGINE_HELPER_DB"
	helperMarkerEnv = "FIBRIX_ENGINE_HELPER_MARKER"
)

// eachDB runs fn against a fresh, migrated SQLite file and a fresh
// PostgreSQL database; fn gets the database url too, for other processes.
func eachDB(t *testing.T, fn func(t *testing.T, s *store.Store, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		url := filepath.Join(t.TempDir(), "fibrix.db")
		fn(t, openStore(t, url), url)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := pgtest.DSN(t)
		fn(t, openStore(t, url), url)
	})
}

func openStore(t testing.TB, url string) *store.Store {
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

// orderVM signs up a tenant and orders one small VM for it.
func orderVM(t testing.TB, s *store.Store, name string) store.VM {
	t.Helper()
	ctx := context.Background()
	ten, u, err := s.SignUp(ctx, store.Actor{}, name, name+"@example.com", "hash")
	if err != nil {
		t.Fatalf("signup: %v", err)
	}
	a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.AddSSHKey(ctx, a, ten.ID, "laptop", string(ssh.MarshalAuthorizedKey(sp)))
	if err != nil {
		t.Fatalf("add key: %v", err)
	}
	img, err := s.GetImage(ctx, "debian-12")
	if err != nil {
		img, err = s.CreateImage(ctx, store.Actor{Email: "staff@example.com"}, store.ImageInput{
			Name: "debian-12", OS: "Debian", Version: "12", SourceURL: "https://images.example.com/debian-12.qcow2",
			Checksum: "sha256:" + fmt.Sprintf("%064x", 1), Enabled: true,
		})
		if err != nil {
			t.Fatalf("create image: %v", err)
		}
	}
	if _, err := s.GetHost(ctx, "kvm-1"); err != nil {
		h, err := s.CreateHost(ctx, store.Actor{Email: "staff@example.com"}, store.HostInput{Name: "kvm-1", URI: "test:///default"})
		if err != nil {
			t.Fatalf("create host: %v", err)
		}
		if err := s.RecordHostFacts(ctx, h.ID, store.Facts{CPUModel: "test", Cores: 64, MemoryMiB: 1 << 18, DiskGiB: 1 << 14, DiskFreeGiB: 1 << 14}, ""); err != nil {
			t.Fatalf("record host facts: %v", err)
		}
	}
	vm, err := s.CreateVM(ctx, a, ten.ID, store.VMOrder{Name: "web", Plan: "nano", Image: img.Name, SSHKeys: []string{k.ID}})
	if err != nil {
		t.Fatalf("order vm: %v", err)
	}
	return vm
}

func getVM(t testing.TB, s *store.Store, id string) store.VMDetail {
	t.Helper()
	d, err := s.GetVM(context.Background(), "", id)
	if err != nil {
		t.Fatalf("get vm: %v", err)
	}
	return d
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve runs e until the test ends and reports how long Serve took to return.
func serve(t *testing.T, e *engine.Engine) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	stopped := false
	stop = func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return 10s after cancel")
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestServeRetriesWithBackoff(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store, _ string) {
		vm := orderVM(t, s, "retries")
		const backoff = 200 * time.Millisecond
		var mu sync.Mutex
		var calls []time.Time
		var attempts []int
		h := engine.HandlerFunc(func(ctx context.Context, got store.VM) (engine.Result, error) {
			mu.Lock()
			calls = append(calls, time.Now())
			attempts = append(attempts, got.Attempts)
			n := len(calls)
			mu.Unlock()
			err := engine.Step(ctx, s, got.ID, "create-disk", "Creating the disk", func(context.Context) error {
				if n <= 2 {
					return fmt.Errorf("pool default is not active (try %d)", n)
				}
				return nil
			})
			if err != nil {
				return engine.Result{}, err
			}
			return engine.Result{Done: true}, nil
		})
		e := engine.New(s, h, engine.Config{Workers: 3, Lease: 2 * time.Second, Poll: 20 * time.Millisecond, MaxAttempts: 5,
			Backoff: func(int) time.Duration { return backoff }}, testLogger(t))
		stop := serve(t, e)
		waitFor(t, 10*time.Second, "the VM's work to finish", func() bool { return !getVM(t, s, vm.ID).NeedsWork })
		time.Sleep(100 * time.Millisecond) // no further calls may follow
		took := stop()
		t.Logf("Serve returned %v after cancel", took)
		// Promptly, not after a lease or a backoff: generous for a loaded box.
		if took > 10*time.Second {
			t.Errorf("Serve took %v to return after cancel", took)
		}

		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 3 {
			t.Fatalf("handler called %d times, want 3", len(calls))
		}
		if fmt.Sprint(attempts) != "[0 1 2]" {
			t.Errorf("attempts seen by the handler = %v, want [0 1 2]", attempts)
		}
		for i := 1; i < len(calls); i++ {
			gap := calls[i].Sub(calls[i-1])
			t.Logf("gap before call %d: %v", i+1, gap)
			if gap < backoff {
				t.Errorf("call %d came %v after the previous; backoff is %v", i+1, gap, backoff)
			}
		}
		d := getVM(t, s, vm.ID)
		if d.Attempts != 0 || d.LastError != "" || d.LeaseOwner != "" {
			t.Errorf("after success: attempts=%d last_error=%q owner=%q", d.Attempts, d.LastError, d.LeaseOwner)
		}
		var steps []string
		for _, st := range d.Steps {
			steps = append(steps, st.Step+"/"+st.State+"/"+st.Detail)
		}
		want := []string{"order/done/", "create-disk/failed/pool default is not active (try 1)",
			"create-disk/failed/pool default is not active (try 2)", "create-disk/done/"}
		if fmt.Sprint(steps) != fmt.Sprint(want) {
			t.Errorf("timeline = %q, want %q", steps, want)
		}
	})
}

func TestServeGivesUp(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store, _ string) {
		vm := orderVM(t, s, "gives-up")
		var calls atomic.Int32
		h := engine.HandlerFunc(func(ctx context.Context, got store.VM) (engine.Result, error) {
			calls.Add(1)
			return engine.Result{}, &engine.StepError{Step: "start", Err: errors.New("the host refused to start the VM")}
		})
		e := engine.New(s, h, engine.Config{Workers: 2, Poll: 10 * time.Millisecond, MaxAttempts: 3,
			Backoff: func(int) time.Duration { return 10 * time.Millisecond }}, testLogger(t))
		serve(t, e)
		waitFor(t, 10*time.Second, "the engine to give up", func() bool { return getVM(t, s, vm.ID).State == store.VMError })
		time.Sleep(100 * time.Millisecond)
		if n := calls.Load(); n != 3 {
			t.Errorf("handler called %d times, want MaxAttempts=3", n)
		}
		d := getVM(t, s, vm.ID)
		if want := "start: the host refused to start the VM (gave up after 3 attempts)"; d.LastError != want || d.NeedsWork {
			t.Errorf("last_error=%q needs_work=%v, want %q and false", d.LastError, d.NeedsWork, want)
		}
		// Staff retry revives it: the engine tries again.
		if err := s.RetryVM(context.Background(), store.Actor{Email: "staff@example.com"}, vm.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a fourth call after the retry", func() bool { return calls.Load() >= 4 })
	})
}

// TestServePanicAndRequeue checks that a panicking handler costs one attempt
// instead of the worker, and that RequeueAfter is honoured without counting
// as a failure.
func TestServePanicAndRequeue(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store, _ string) {
		vm := orderVM(t, s, "panics")
		var calls atomic.Int32
		var requeuedAt atomic.Int64
		h := engine.HandlerFunc(func(ctx context.Context, got store.VM) (engine.Result, error) {
			switch calls.Add(1) {
			case 1:
				panic("nil map")
			case 2:
				requeuedAt.Store(time.Now().UnixNano())
				return engine.Result{RequeueAfter: 300 * time.Millisecond}, nil
			case 3:
				if got.LastError != "reconcile: internal error" {
					t.Errorf("last_error after a panic = %q, want the stack kept out of it", got.LastError)
				}
				if got.Attempts != 1 {
					t.Errorf("attempts after a requeue = %d, want 1 (a requeue is no failure)", got.Attempts)
				}
				if gap := time.Since(time.Unix(0, requeuedAt.Load())); gap < 300*time.Millisecond {
					t.Errorf("requeued pass came after %v, want ≥ 300ms", gap)
				}
			}
			return engine.Result{Done: true}, nil
		})
		e := engine.New(s, h, engine.Config{Workers: 1, Poll: 10 * time.Millisecond,
			Backoff: func(int) time.Duration { return 0 }}, testLogger(t))
		serve(t, e)
		waitFor(t, 10*time.Second, "the work to finish", func() bool { return !getVM(t, s, vm.ID).NeedsWork })
		if n := calls.Load(); n != 3 {
			t.Errorf("handler called %d times, want 3", n)
		}
		var failed []string
		for _, st := range getVM(t, s, vm.ID).Steps {
			failed = append(failed, st.Step+"/"+st.State)
		}
		if fmt.Sprint(failed) != "[order/done]" {
			t.Errorf("timeline = %v; a panic is no step", failed)
		}
	})
}

// TestLeaseRenewedWhileWorking checks that a pass longer than the lease keeps
// the VM, and that cancelling Serve interrupts it and releases the VM
// without counting a failure.
func TestLeaseRenewedWhileWorking(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store, _ string) {
		vm := orderVM(t, s, "long")
		started := make(chan struct{})
		var runs atomic.Int32
		h := engine.HandlerFunc(func(ctx context.Context, got store.VM) (engine.Result, error) {
			if runs.Add(1) == 1 {
				close(started)
			}
			<-ctx.Done()
			return engine.Result{}, &engine.StepError{Step: "boot", Err: ctx.Err()}
		})
		const lease = time.Second
		e := engine.New(s, h, engine.Config{Workers: 2, Lease: lease, Poll: 10 * time.Millisecond}, testLogger(t))
		stop := serve(t, e)
		<-started
		for range 4 { // four lease lengths
			time.Sleep(lease)
			if _, ok, err := s.ClaimVM(context.Background(), "intruder", time.Minute); ok || err != nil {
				t.Fatalf("another worker claimed the VM while its lease was being renewed (err %v)", err)
			}
		}
		took := stop()
		t.Logf("Serve returned %v after cancel with a handler in flight", took)
		if n := runs.Load(); n != 1 {
			t.Errorf("the handler ran %d times for one VM; a second worker of the same engine took it over", n)
		}
		// Promptly, not after a lease or a backoff: generous for a loaded box.
		if took > 10*time.Second {
			t.Errorf("Serve took %v to return", took)
		}
		d := getVM(t, s, vm.ID)
		if !d.NeedsWork || d.Attempts != 0 || d.LeaseOwner != "" || d.LastError != "" {
			t.Errorf("after an interrupted pass: needs_work=%v attempts=%d owner=%q last_error=%q; want released, no attempt counted",
				d.NeedsWork, d.Attempts, d.LeaseOwner, d.LastError)
		}
		if _, ok, err := s.ClaimVM(context.Background(), "next", time.Minute); !ok || err != nil {
			t.Errorf("the interrupted VM is not claimable at once: ok=%v err=%v", ok, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	b := engine.Backoff(2*time.Second, 5*time.Minute)
	for _, tc := range []struct {
		attempt int
		nominal time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {3, 8 * time.Second}, {8, 256 * time.Second}, {9, 5 * time.Minute}, {100, 5 * time.Minute}} {
		for range 50 {
			if d := b(tc.attempt); d < tc.nominal/2 || d > tc.nominal {
				t.Errorf("attempt %d: %v, want within [%v, %v]", tc.attempt, d, tc.nominal/2, tc.nominal)
			}
		}
	}
}

// TestCrashResume kills (SIGKILL) a worker process in the middle of a pass
// and checks that the VM's work is done exactly once after its lease expires.
func TestCrashResume(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store, url string) {
		vm := orderVM(t, s, "crash")
		marker := filepath.Join(t.TempDir(), "claimed")
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorker$", "-test.v")
		cmd.Env = append(os.Environ(), helperDBEnv+"="+url, helperMarkerEnv+"="+marker)
		cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitFor(t, 30*time.Second, "the worker process to claim the VM", func() bool {
			b, err := os.ReadFile(marker)
			return err == nil && string(b) == vm.ID
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if err := cmd.Wait(); err == nil {
			t.Fatal("worker exited cleanly; want killed")
		}
		if d := getVM(t, s, vm.ID); d.LeaseOwner != "crashing-worker" || !d.NeedsWork {
			t.Fatalf("after the kill: owner %q needs_work %v; want the dead worker's lease", d.LeaseOwner, d.NeedsWork)
		}

		var runs atomic.Int32
		var resumedAfter atomic.Int64
		h := engine.HandlerFunc(func(ctx context.Context, got store.VM) (engine.Result, error) {
			if runs.Add(1) == 1 {
				resumedAfter.Store(int64(time.Since(killed)))
			}
			return engine.Result{Done: true}, nil
		})
		e := engine.New(s, h, engine.Config{Workers: 4, Lease: time.Second, Poll: 20 * time.Millisecond}, testLogger(t))
		serve(t, e)
		waitFor(t, 10*time.Second, "the work to complete", func() bool { return !getVM(t, s, vm.ID).NeedsWork })
		time.Sleep(300 * time.Millisecond)
		if n := runs.Load(); n != 1 {
			t.Errorf("handler ran %d times, want exactly once", n)
		}
		t.Logf("resumed %v after the kill (lease 1s)", time.Duration(resumedAfter.Load()))
		if d := getVM(t, s, vm.ID); d.NeedsWork || d.LeaseOwner != "" {
			t.Errorf("after resume: needs_work=%v owner=%q", d.NeedsWork, d.LeaseOwner)
		}
	})
}

// TestHelperWorker is the worker process TestCrashResume kills: an engine
// whose handler reports the claim and then blocks for good. It does nothing
// in a normal test run.
func TestHelperWorker(t *testing.T) {
	url := os.Getenv(helperDBEnv)
	if url == "" {
		t.Skip("helper process for TestCrashResume")
	}
	s, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := engine.HandlerFunc(func(ctx context.Context, vm store.VM) (engine.Result, error) {
		if err := os.WriteFile(os.Getenv(helperMarkerEnv)+".tmp", []byte(vm.ID), 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(os.Getenv(helperMarkerEnv)+".tmp", os.Getenv(helperMarkerEnv)); err != nil {
			t.Error(err)
		}
		select {} // killed here
	})
	e := engine.New(s, h, engine.Config{Workers: 1, Lease: time.Second, Poll: 20 * time.Millisecond, Owner: "crashing-worker"}, nil)
	_ = e.Serve(context.Background())
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.buf, []byte(s))
}

func TestClaimsBackOffWhileDatabaseIsDown(t *testing.T) {
	c := pgtest.NewCluster(t)
	s := openStore(t, c.DSN())
	var handled atomic.Int32
	h := engine.HandlerFunc(func(ctx context.Context, got store.VM) (engine.Result, error) {
		handled.Add(1)
		return engine.Result{Done: true}, nil
	})
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil))
	const workers = 2
	e := engine.New(s, h, engine.Config{Workers: workers, Poll: 20 * time.Millisecond, MaxPollBackoff: 400 * time.Millisecond}, log)
	serve(t, e)

	c.Stop(t)
	// At a steady 20 ms poll a worker would fail about 150 claims in 3 s;
	// waits doubling from 20 ms to 400 ms allow about a dozen.
	time.Sleep(3 * time.Second)
	failed := logs.count("claim work failed; retrying with growing waits")
	if failed != workers {
		t.Errorf("%d workers logged the start of the outage %d times, want once each", workers, failed)
	}
	if n := logs.count("level=ERROR"); n != workers {
		t.Errorf("error lines during a 3 s outage = %d, want %d (one per worker)", n, workers)
	}

	c.Start(t)
	waitFor(t, 20*time.Second, "every worker to claim again", func() bool {
		return logs.count("claim work works again") == workers
	})
	vm := orderVM(t, s, "after-outage")
	waitFor(t, 10*time.Second, "the VM ordered after the outage to be reconciled", func() bool {
		return !getVM(t, s, vm.ID).NeedsWork
	})
	if handled.Load() != 1 {
		t.Errorf("handler called %d times, want 1", handled.Load())
	}
}
