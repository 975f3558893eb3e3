package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// bigHost makes sure a ready host with room for hundreds of small VMs
// exists, so these tests do not depend on the capacity of setup's host.
func bigHost(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetHost(ctx, "work-big"); err == nil {
		return
	}
	h, err := s.CreateHost(ctx, store.Actor{Email: "staff@example.com"}, store.HostInput{Name: "work-big", URI: "test:///default"})
	if err != nil {
		t.Fatalf("create host: %v", err)
	}
	if err := s.RecordHostFacts(ctx, h.ID, store.Facts{CPUModel: "test", Cores: 1024, MemoryMiB: 1 << 20, DiskGiB: 1 << 16, DiskFreeGiB: 1 << 16}, ""); err != nil {
		t.Fatalf("record host facts: %v", err)
	}
}

// dueVMs orders n VMs for a fresh tenant whose quota allows them.
func dueVMs(t *testing.T, s *store.Store, tenant string, n int) []store.VM {
	t.Helper()
	ctx := context.Background()
	f := setup(t, s, tenant)
	bigHost(t, s)
	big := store.Quota{Instances: int64(n), VCPUs: int64(n), MemoryMiB: int64(n) * 512, DiskGiB: int64(n) * 10, SSHKeys: 10, PortForwards: 5}
	if err := s.SetTenantQuota(ctx, store.Actor{Email: "staff@example.com"}, f.tenant.ID, big); err != nil {
		t.Fatalf("raise quota: %v", err)
	}
	vms := make([]store.VM, n)
	for i := range vms {
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%d", i), "nano"))
		if err != nil {
			t.Fatalf("create vm %d: %v", i, err)
		}
		vms[i] = vm
	}
	return vms
}

func vmRow(t *testing.T, s *store.Store, id string) store.VM {
	t.Helper()
	d, err := s.GetVM(context.Background(), "", id)
	if err != nil {
		t.Fatalf("get vm: %v", err)
	}
	return d.VM
}

func mustClaim(t *testing.T, s *store.Store, owner string, lease time.Duration) store.VM {
	t.Helper()
	vm, ok, err := s.ClaimVM(context.Background(), owner, lease)
	if err != nil || !ok {
		t.Fatalf("claim by %s: ok=%v err=%v, want a VM", owner, ok, err)
	}
	return vm
}

func mustNotClaim(t *testing.T, s *store.Store, why string) {
	t.Helper()
	vm, ok, err := s.ClaimVM(context.Background(), "probe", time.Minute)
	if err != nil || ok {
		t.Fatalf("%s: claim gave %s (ok=%v, err=%v), want nothing due", why, vm.Name, ok, err)
	}
}

func TestClaimVM(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		vms := dueVMs(t, s, "claims", 3)
		got := map[string]int{}
		for range vms {
			vm := mustClaim(t, s, "w1", time.Minute)
			got[vm.ID]++
			if vm.LeaseOwner != "w1" || vm.LeaseUntil == nil || time.Until(*vm.LeaseUntil) < 50*time.Second {
				t.Errorf("claimed %s: owner %q until %v", vm.Name, vm.LeaseOwner, vm.LeaseUntil)
			}
		}
		for _, vm := range vms {
			if got[vm.ID] != 1 {
				t.Errorf("%s claimed %d times, want once", vm.Name, got[vm.ID])
			}
		}
		mustNotClaim(t, s, "all leased")

		// Not done: due again only after requeueAfter.
		if err := s.FinishWork(ctx, vms[0].ID, "w1", false, time.Hour); err != nil {
			t.Fatal(err)
		}
		// Done with nothing else asked for: needs no more work.
		if err := s.FinishWork(ctx, vms[1].ID, "w1", true, 0); err != nil {
			t.Fatal(err)
		}
		if r := vmRow(t, s, vms[1].ID); r.NeedsWork || r.LeaseOwner != "" || r.LeaseUntil != nil {
			t.Errorf("after done: needs_work=%v owner=%q until=%v", r.NeedsWork, r.LeaseOwner, r.LeaseUntil)
		}
		if r := vmRow(t, s, vms[0].ID); !r.NeedsWork || r.NextAttemptAt == nil || time.Until(*r.NextAttemptAt) < 59*time.Minute {
			t.Errorf("after requeue: needs_work=%v next=%v", r.NeedsWork, r.NextAttemptAt)
		}
		mustNotClaim(t, s, "future next_attempt_at, needs_work=false and leased")

		// Someone else's lease is refused everywhere.
		for name, err := range map[string]error{
			"renew":  s.RenewLease(ctx, vms[2].ID, "w2", time.Minute),
			"finish": s.FinishWork(ctx, vms[2].ID, "w2", true, 0),
		} {
			if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "lease lost") {
				t.Errorf("%s by a non-owner: %v, want conflict (lease lost)", name, err)
			}
		}
		if _, err := s.FailAttempt(ctx, vms[2].ID, "w2", "boot", errors.New("x"), 3, nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("fail by a non-owner: %v, want conflict", err)
		}
		if err := s.RenewLease(ctx, vms[2].ID, "w1", 300*time.Millisecond); err != nil {
			t.Fatalf("renew by the owner: %v", err)
		}
		mustNotClaim(t, s, "renewed lease")

		// An expired lease makes the VM claimable again, and the old owner
		// can no longer renew or finish it.
		time.Sleep(400 * time.Millisecond)
		if vm := mustClaim(t, s, "w2", time.Minute); vm.ID != vms[2].ID {
			t.Errorf("after expiry claimed %s, want %s", vm.Name, vms[2].Name)
		}
		if err := s.RenewLease(ctx, vms[2].ID, "w1", time.Minute); !errors.Is(err, store.ErrConflict) {
			t.Errorf("renew by the expired owner: %v, want conflict", err)
		}
		if err := s.FinishWork(ctx, vms[2].ID, "w1", true, 0); !errors.Is(err, store.ErrConflict) {
			t.Errorf("finish by the expired owner: %v, want conflict", err)
		}
		if err := s.FinishWork(ctx, vms[2].ID, "w2", true, 0); err != nil {
			t.Errorf("finish by the new owner: %v", err)
		}
		if _, _, err := s.ClaimVM(ctx, "", time.Minute); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("claim without owner: %v, want invalid", err)
		}
	})
}

// TestClaimParallel checks that workers racing for due VMs never claim one
// twice: 8 on PostgreSQL (row locks, SKIP LOCKED), 4 on SQLite (guarded update).
func TestClaimParallel(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		const n = 200
		workers := 8
		if s.Dialect() != "postgres" {
			workers = 4
		}
		vms := dueVMs(t, s, "parallel", n)
		start := time.Now()
		var mu sync.Mutex
		claims := map[string][]string{}
		var wg sync.WaitGroup
		for w := range workers {
			owner := fmt.Sprintf("w%d", w)
			wg.Go(func() {
				for {
					vm, ok, err := s.ClaimVM(context.Background(), owner, time.Minute)
					if err != nil {
						t.Errorf("%s: %v", owner, err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					claims[vm.ID] = append(claims[vm.ID], owner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		t.Logf("%s: %d workers claimed %d VMs in %v", s.Dialect(), workers, len(claims), time.Since(start))
		perWorker := map[string]int{}
		for _, vm := range vms {
			owners := claims[vm.ID]
			if len(owners) != 1 {
				t.Errorf("%s claimed by %v, want exactly one worker", vm.Name, owners)
				continue
			}
			perWorker[owners[0]]++
			if r := vmRow(t, s, vm.ID); r.LeaseOwner != owners[0] {
				t.Errorf("%s: lease owner %q, claimed by %s", vm.Name, r.LeaseOwner, owners[0])
			}
		}
		if len(claims) != n {
			t.Errorf("claimed %d VMs, want %d", len(claims), n)
		}
		t.Logf("claims per worker: %v", perWorker)
	})
}

func TestFailAttemptAndRetry(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		vm := dueVMs(t, s, "failing", 1)[0]
		staff := store.Actor{UserID: "staff-1", Email: "staff@example.com"}
		if err := s.RetryVM(ctx, staff, vm.ID); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("retry of a pending VM: %v, want invalid transition", err)
		}
		if err := s.RetryVM(ctx, staff, "no-such-vm"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("retry of an unknown VM: %v, want not found", err)
		}

		// A failure backs off: the VM is not due until the backoff passes.
		var asked []int
		backoff := func(attempt int) time.Duration { asked = append(asked, attempt); return 300 * time.Millisecond }
		for attempt := 1; attempt <= 3; attempt++ {
			mustClaim(t, s, "w1", time.Minute)
			gaveUp, err := s.FailAttempt(ctx, vm.ID, "w1", "create-disk", errors.New("storage pool is full"), 3, backoff)
			if err != nil {
				t.Fatal(err)
			}
			if gaveUp != (attempt == 3) {
				t.Errorf("attempt %d: gaveUp=%v", attempt, gaveUp)
			}
			if attempt == 3 {
				break
			}
			r := vmRow(t, s, vm.ID)
			if r.Attempts != attempt || !r.NeedsWork || r.LeaseOwner != "" || r.LastError != "create-disk: storage pool is full" ||
				r.NextAttemptAt == nil || time.Until(*r.NextAttemptAt) < 200*time.Millisecond || r.State != store.VMPending {
				t.Errorf("after failure %d: %+v", attempt, r)
			}
			mustNotClaim(t, s, "backing off")
			time.Sleep(350 * time.Millisecond)
		}
		if fmt.Sprint(asked) != "[1 2]" {
			t.Errorf("backoff asked for attempts %v, want [1 2]", asked)
		}
		d, err := s.GetVM(ctx, vm.TenantID, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := "create-disk: storage pool is full (gave up after 3 attempts)"
		if d.State != store.VMError || d.NeedsWork || d.Attempts != 3 || d.LastError != want {
			t.Errorf("after giving up: state=%s needs_work=%v attempts=%d last_error=%q, want error/false/3/%q",
				d.State, d.NeedsWork, d.Attempts, d.LastError, want)
		}
		if last := d.Steps[len(d.Steps)-1]; last.Step != "create-disk" || last.State != store.StepFailed || !strings.Contains(last.Message, "storage pool is full") {
			t.Errorf("last timeline step = %+v, want the failed create-disk", last)
		}
		mustNotClaim(t, s, "given up")

		// Staff revive it.
		if err := s.RetryVM(ctx, staff, vm.ID); err != nil {
			t.Fatal(err)
		}
		r := vmRow(t, s, vm.ID)
		if !r.NeedsWork || r.Attempts != 0 || r.NextAttemptAt == nil || time.Until(*r.NextAttemptAt) > 0 {
			t.Errorf("after retry: needs_work=%v attempts=%d next=%v", r.NeedsWork, r.Attempts, r.NextAttemptAt)
		}
		if got := mustClaim(t, s, "w2", time.Minute); got.ID != vm.ID {
			t.Errorf("claimed %s after retry", got.Name)
		}
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "vm.retry"}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		results := []string{}
		for _, e := range entries {
			results = append(results, e.Result)
		}
		// Newest first: the success, then the two refusals.
		if fmt.Sprint(results) != "[success failure failure]" || entries[0].TargetID != vm.ID || entries[0].ActorEmail != staff.Email {
			t.Errorf("vm.retry audit = %+v", entries)
		}
	})
}

func TestFinishWorkSeesNewRequests(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "requests")
		bigHost(t, s)
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, "w1", time.Minute)
		if _, ok, err := s.NextOperation(ctx, vm.ID); ok || err != nil {
			t.Fatalf("operation before any was queued: ok=%v err=%v", ok, err)
		}
		// The customer deletes the VM while a worker is creating it.
		op, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpDelete)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishWork(ctx, vm.ID, "w1", true, 0); err != nil {
			t.Fatal(err)
		}
		if r := vmRow(t, s, vm.ID); !r.NeedsWork || r.LeaseOwner != "" {
			t.Fatalf("done while a delete was queued: needs_work=%v owner=%q, want more work", r.NeedsWork, r.LeaseOwner)
		}
		mustClaim(t, s, "w2", time.Minute)
		next, ok, err := s.NextOperation(ctx, vm.ID)
		if err != nil || !ok || next.ID != op.ID {
			t.Fatalf("next operation = %+v ok=%v err=%v, want the delete", next, ok, err)
		}
		for range 2 { // started again when resumed after a crash
			if err := s.StartOperation(ctx, op.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.FinishOperation(ctx, op.ID, store.OpDone, "deleted"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishOperation(ctx, op.ID, store.OpFailed, "again"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("finish twice: %v, want conflict", err)
		}
		if err := s.StartOperation(ctx, op.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("start a finished operation: %v, want conflict", err)
		}
		if err := s.FinishOperation(ctx, op.ID, "bogus", ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("finish as bogus: %v, want invalid", err)
		}
		if err := s.FinishWork(ctx, vm.ID, "w2", true, 0); err != nil {
			t.Fatal(err)
		}
		if r := vmRow(t, s, vm.ID); r.NeedsWork {
			t.Error("needs work after the delete was carried out")
		}
		d, err := s.GetVM(ctx, f.tenant.ID, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Operations[0]; got.State != store.OpDone || got.Attempts != 2 || got.Message != "deleted" {
			t.Errorf("operation = %+v", got)
		}
	})
}

func TestTimeline(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		vm := dueVMs(t, s, "timeline", 1)[0]
		id, err := s.StartStep(ctx, vm.ID, "create-disk", "Creating the disk")
		if err != nil {
			t.Fatal(err)
		}
		id2, err := s.StartStep(ctx, vm.ID, "define", "Defining the VM")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishStep(ctx, id, store.StepDone, "", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishStep(ctx, id2, store.StepFailed, "Could not define the VM", "virError(Code=9): domain exists"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishStep(ctx, id, store.StepFailed, "", ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("finish twice: %v, want conflict", err)
		}
		if err := s.FinishStep(ctx, id2, store.StepRunning, "", ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("finish as running: %v, want invalid", err)
		}
		d, err := s.GetVM(ctx, vm.TenantID, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range d.Steps {
			got = append(got, fmt.Sprintf("%s/%s/%s/%s/%v", st.Step, st.State, st.Message, st.Detail, st.FinishedAt != nil))
		}
		want := []string{
			"order/done/Order accepted: nano, debian-12//true",
			"create-disk/done/Creating the disk//true",
			"define/failed/Could not define the VM/virError(Code=9): domain exists/true",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("timeline =\n%q\nwant\n%q", got, want)
		}
	})
}
