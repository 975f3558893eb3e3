package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// powerResults lists a machine's power_done/power_failed events as
// "kind detail" (detail is the event the result answers).
func powerResults(t *testing.T, s *store.Store, id string) []string {
	t.Helper()
	d, err := s.GetMachine(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range d.Events {
		if e.Kind == store.EventPowerDone || e.Kind == store.EventPowerFailed {
			out = append(out, e.Kind+" "+e.Detail)
		}
	}
	return out
}

func claimCount(t *testing.T, s *store.Store, machineID string) int64 {
	t.Helper()
	n, err := store.PowerClaimCount(context.Background(), s, machineID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// onlyJob returns the single power job listed for a machine.
func onlyJob(t *testing.T, s *store.Store, machineID string) store.PowerJob {
	t.Helper()
	jobs, err := s.PowerJobs(context.Background(), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var mine []store.PowerJob
	for _, j := range jobs {
		if j.Machine.ID == machineID {
			mine = append(mine, j)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("power jobs of %s: %+v; want one", machineID, mine)
	}
	return mine[0]
}

func claim(t *testing.T, s *store.Store, eventID, owner string, lease time.Duration) (store.PowerJob, bool) {
	t.Helper()
	j, ok, err := s.ClaimPowerJob(context.Background(), eventID, owner, lease, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatalf("claim by %s: %v", owner, err)
	}
	return j, ok
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s: got %v; want a conflict", what, err)
	}
}

// TestPowerJobClaim checks a claimed job is refused to a second worker and
// hidden from its list, holds the machine against polls, and that only the
// claimant records the result, which ends the claim and frees the machine.
func TestPowerJobClaim(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "node-1", "52:54:00:00:01:01")
		act(t, s, m.ID, store.MachineCommission, store.MachineActionInput{})
		listed := onlyJob(t, s, m.ID)
		if listed.Action != store.PowerPXECycle {
			t.Fatalf("job = %+v; want a pxe_cycle", listed)
		}

		j, ok := claim(t, s, listed.EventID, "worker-a", time.Hour)
		if !ok || j.EventID != listed.EventID || j.Action != store.PowerPXECycle || j.Machine.ID != m.ID || j.TakenOverFrom != "" {
			t.Fatalf("claim = %+v, %v; want the pxe_cycle, fresh", j, ok)
		}
		if _, ok := claim(t, s, listed.EventID, "worker-b", time.Hour); ok {
			t.Fatal("a second worker claimed a held job")
		}
		if jobs, err := s.PowerJobs(ctx, time.Now().Add(-time.Hour)); err != nil || len(jobs) != 0 {
			t.Errorf("jobs while claimed = %+v, %v; want none", jobs, err)
		}
		// The machine is busy: no poll lists or leases it.
		if due, err := s.MachinesToPoll(ctx, time.Now().Add(time.Hour)); err != nil || len(due) != 0 {
			t.Errorf("machines to poll while claimed = %d, %v; want none", len(due), err)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-b", time.Hour); err != nil || ok {
			t.Errorf("lease of a claimed machine by another worker = %v, %v; want refused", ok, err)
		}

		err := s.RecordPowerResult(ctx, store.PowerResult{MachineID: m.ID, EventID: j.EventID, Owner: "worker-b", OK: true, Message: "x", State: "on"})
		wantConflict(t, "result from a worker without the claim", err)
		if got := powerResults(t, s, m.ID); len(got) != 0 {
			t.Errorf("results after a refused record: %q", got)
		}
		if err := s.RecordPowerResult(ctx, store.PowerResult{MachineID: m.ID, EventID: j.EventID, Owner: "worker-a", OK: true, Message: "done", State: "on"}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{store.EventPowerDone + " " + j.EventID}, powerResults(t, s, m.ID)); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if n := claimCount(t, s, m.ID); n != 0 {
			t.Errorf("claims after the result: %d", n)
		}
		err = s.RecordPowerResult(ctx, store.PowerResult{MachineID: m.ID, EventID: j.EventID, Owner: "worker-a", OK: true, Message: "again"})
		wantConflict(t, "second result", err)
		if _, ok := claim(t, s, listed.EventID, "worker-b", time.Hour); ok {
			t.Error("a done job was claimed again")
		}

		// The result freed the machine for polls.
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-b", time.Hour); err != nil || !ok {
			t.Fatalf("lease after the result = %v, %v; want granted", ok, err)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-c", time.Hour); err != nil || ok {
			t.Errorf("second lease = %v, %v; want refused", ok, err)
		}
		if err := s.ReleaseMachine(ctx, m.ID, "worker-c"); err != nil {
			t.Fatal(err)
		}
		_, err = s.RecordPowerState(ctx, m.ID, "worker-c", "off")
		wantConflict(t, "power state from a worker without the lease", err)
		if drift, err := s.RecordPowerState(ctx, m.ID, "worker-b", "on"); err != nil || drift {
			t.Errorf("RecordPowerState = %v, %v; want no drift", drift, err)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-c", time.Hour); err != nil || !ok {
			t.Errorf("lease after the recorded poll = %v, %v; want granted", ok, err)
		}
		if err := s.ReleaseMachine(ctx, m.ID, "worker-c"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-d", time.Hour); err != nil || !ok {
			t.Errorf("lease after a release = %v, %v; want granted", ok, err)
		}

		// Bad calls change nothing.
		if _, _, err := s.ClaimPowerJob(ctx, listed.EventID, "", time.Hour, time.Time{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("claim without an owner: %v", err)
		}
		if _, _, err := s.ClaimPowerJob(ctx, listed.EventID, "w", 0, time.Time{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("claim without a lease: %v", err)
		}
		if err := s.RecordPowerResult(ctx, store.PowerResult{MachineID: m.ID, EventID: listed.EventID, OK: true}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("result without an owner: %v", err)
		}
	})
}

// TestPowerJobTakeover checks a claim whose lease ran out (its worker died)
// is taken over by one other worker, after which the dead worker's result
// is refused; and that a released job can be claimed at once.
func TestPowerJobTakeover(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "node-1", "52:54:00:00:02:01")
		act(t, s, m.ID, store.MachinePowerCycle, store.MachineActionInput{})
		listed := onlyJob(t, s, m.ID)
		if _, ok := claim(t, s, listed.EventID, "worker-a", time.Millisecond); !ok {
			t.Fatal("first claim refused")
		}
		time.Sleep(20 * time.Millisecond) // worker-a dies; its lease runs out
		if got := onlyJob(t, s, m.ID); got.EventID != listed.EventID {
			t.Errorf("job listed after the lease ran out = %+v", got)
		}
		j, ok := claim(t, s, listed.EventID, "worker-b", time.Hour)
		if !ok || j.TakenOverFrom != "worker-a" || j.Action != store.MachinePowerCycle {
			t.Fatalf("takeover = %+v, %v; want the power_cycle taken over from worker-a", j, ok)
		}
		if _, ok := claim(t, s, listed.EventID, "worker-c", time.Hour); ok {
			t.Error("a third worker claimed the job taken over")
		}
		err := s.RecordPowerResult(ctx, store.PowerResult{MachineID: m.ID, EventID: j.EventID, Owner: "worker-a", OK: true, Message: "late"})
		wantConflict(t, "result of the worker taken over", err)
		if err := s.RecordPowerResult(ctx, store.PowerResult{MachineID: m.ID, EventID: j.EventID, Owner: "worker-b", OK: true, Message: "done"}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{store.EventPowerDone + " " + j.EventID}, powerResults(t, s, m.ID)); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}

		// A released job goes to the next worker at once; a release by a
		// worker that does not hold it changes nothing.
		act(t, s, m.ID, store.MachinePowerOn, store.MachineActionInput{})
		on := onlyJob(t, s, m.ID)
		if _, ok := claim(t, s, on.EventID, "worker-a", time.Hour); !ok {
			t.Fatal("claim of power_on refused")
		}
		if err := s.ReleasePowerJob(ctx, on.EventID, m.ID, "worker-b"); err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, s, on.EventID, "worker-b", time.Hour); ok {
			t.Error("a release by a worker without the claim freed the job")
		}
		if err := s.ReleasePowerJob(ctx, on.EventID, m.ID, "worker-a"); err != nil {
			t.Fatal(err)
		}
		if n := claimCount(t, s, m.ID); n != 0 {
			t.Errorf("claims after the release: %d", n)
		}
		if j, ok := claim(t, s, on.EventID, "worker-b", time.Hour); !ok || j.TakenOverFrom != "" {
			t.Errorf("claim after the release = %+v, %v; want a fresh claim", j, ok)
		}
	})
}

// TestPowerJobClaimRefusals checks stale and obsolete jobs are not claimed,
// one worker's lease on a machine keeps its other jobs from another
// worker, and claims go with their machine.
func TestPowerJobClaimRefusals(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "node-1", "52:54:00:00:03:01")
		act(t, s, m.ID, store.MachineCommission, store.MachineActionInput{})
		phase := onlyJob(t, s, m.ID)
		if _, ok, err := s.ClaimPowerJob(ctx, phase.EventID, "worker-a", time.Hour, time.Now().Add(time.Hour)); err != nil || ok {
			t.Errorf("claim of a stale job = %v, %v; want refused", ok, err)
		}
		// Leaving the phase makes its power job obsolete.
		act(t, s, m.ID, store.MachineMarkBroken, store.MachineActionInput{Reason: "fan"})
		if _, ok := claim(t, s, phase.EventID, "worker-a", time.Hour); ok {
			t.Error("the power job of a phase the machine left was claimed")
		}
		if n := claimCount(t, s, m.ID); n != 0 {
			t.Errorf("claims after refusals: %d", n)
		}
		if _, ok := claim(t, s, "no-such-event", "worker-a", time.Hour); ok {
			t.Error("a job without an event was claimed")
		}

		// One machine, two jobs: while worker-a talks to the BMC, worker-b
		// gets neither.
		act(t, s, m.ID, store.MachinePowerOff, store.MachineActionInput{})
		act(t, s, m.ID, store.MachinePowerOn, store.MachineActionInput{})
		jobs, err := s.PowerJobs(ctx, time.Now().Add(-time.Hour))
		if err != nil || len(jobs) != 2 {
			t.Fatalf("jobs = %+v, %v; want two", jobs, err)
		}
		if _, ok := claim(t, s, jobs[0].EventID, "worker-a", time.Hour); !ok {
			t.Fatal("claim of power_off refused")
		}
		if _, ok := claim(t, s, jobs[1].EventID, "worker-b", time.Hour); ok {
			t.Error("a second worker claimed a job of a machine another worker is powering")
		}
		if n := claimCount(t, s, m.ID); n != 1 {
			t.Errorf("claims = %d; want 1 (the refused claim rolled back)", n)
		}
		// The claim holds the job by itself: with the machine free (its
		// lease given back), the held job is still refused, the other is not.
		if err := s.ReleaseMachine(ctx, m.ID, "worker-a"); err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, s, jobs[0].EventID, "worker-b", time.Hour); ok {
			t.Error("a held job was claimed once its machine was free")
		}
		if _, ok := claim(t, s, jobs[1].EventID, "worker-b", time.Hour); !ok {
			t.Error("the free job of a free machine was refused")
		}
		if n := claimCount(t, s, m.ID); n != 2 {
			t.Errorf("claims = %d; want 2", n)
		}
		if err := s.DeleteMachine(ctx, staffActor, m.ID); err != nil {
			t.Fatal(err)
		}
		if n := claimCount(t, s, m.ID); n != 0 {
			t.Errorf("claims after deleting the machine: %d", n)
		}
	})
}

// TestPowerJobClaimParallel races workers for one job: exactly one wins.
func TestPowerJobClaimParallel(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		m := enlist(t, s, "node-1", "52:54:00:00:04:01")
		act(t, s, m.ID, store.MachineCommission, store.MachineActionInput{})
		listed := onlyJob(t, s, m.ID)
		const workers = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			won  []string
			errs []error
		)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("worker-%d", i)
				_, ok, err := s.ClaimPowerJob(context.Background(), listed.EventID, owner, time.Hour, time.Now().Add(-time.Hour))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					won = append(won, owner)
				}
			}()
		}
		wg.Wait()
		if len(errs) != 0 {
			t.Fatalf("claim errors: %v", errs)
		}
		if len(won) != 1 {
			t.Fatalf("winners = %v; want exactly one", won)
		}
		if n := claimCount(t, s, m.ID); n != 1 {
			t.Errorf("claims = %d; want 1", n)
		}
	})
}

// TestBootModeParam checks boot_mode takes bios or uefi on IPMI machines
// only, and that a refusal changes nothing.
func TestBootModeParam(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := func(typ, mode string) store.MachineInput {
			return store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:00:05:01"}, PowerType: typ,
				PowerParams: map[string]string{"address": "10.0.0.5", "mac": "52:54:00:00:05:01", "boot_mode": mode}}
		}
		for _, tc := range []struct{ name, typ, mode, msg string }{
			{"unknown mode", store.PowerIPMI, "legacy", `boot_mode "legacy" is not a boot mode; use bios or uefi`},
			{"efi spelt differently", store.PowerIPMI, "efi", "use bios or uefi"},
			{"not ipmi", store.PowerWoL, "uefi", "boot_mode applies to ipmi power only"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.EnlistMachine(ctx, staffActor, in(tc.typ, tc.mode))
				e, ok := store.AsError(err)
				if !ok || !errors.Is(err, store.ErrInvalid) || e.Field != "power_params" || !strings.Contains(e.Message, tc.msg) {
					t.Errorf("got %v (%+v); want invalid power_params saying %q", err, e, tc.msg)
				}
			})
		}
		if _, total, err := s.ListMachines(ctx, store.Page{}, ""); err != nil || total != 0 {
			t.Fatalf("machines after refusals: %d, %v", total, err)
		}

		m, err := s.EnlistMachine(ctx, staffActor, in(store.PowerIPMI, " UEFI "))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Params()["boot_mode"]; got != "uefi" {
			t.Errorf("boot_mode stored as %q; want uefi", got)
		}
		up := in(store.PowerIPMI, "pxe")
		if _, err := s.UpdateMachine(ctx, staffActor, m.ID, up); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("update with a bad boot_mode: %v", err)
		}
		d, err := s.GetMachine(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.PowerParams != m.PowerParams {
			t.Errorf("params after a refused update = %s; want %s", d.PowerParams, m.PowerParams)
		}
		if _, err := s.UpdateMachine(ctx, staffActor, m.ID, in(store.PowerIPMI, "bios")); err != nil {
			t.Errorf("update to bios: %v", err)
		}
	})
}
