package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/migrations"
)

// The provisioner's side of the contract: a VM needs work while needs_work
// is true and next_attempt_at has come; a worker holds it while lease_until
// is in the future. Every write below is guarded by the lease owner, so a
// worker whose lease expired and was taken over changes nothing.

// dueClause selects VMs that need work now and that nobody holds; its two
// parameters are both the current time.
const dueClause = `needs_work = ? AND deleted_at IS NULL
	AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
	AND (lease_until IS NULL OR lease_until < ?)`

// dueOrder serves the longest-waiting VM first; a VM without a due time
// counts as the oldest on both dialects (they sort NULLs differently).
const dueOrder = `CASE WHEN next_attempt_at IS NULL THEN 0 ELSE 1 END, next_attempt_at, id`

// claimCandidates is how many due VMs a SQLite claim looks at before giving
// up to other workers that were faster.
const claimCandidates = 8

// claimRounds bounds how often a SQLite claim looks again after losing
// every candidate to other workers.
const claimRounds = 10

// ClaimVM leases one due VM to owner for lease and returns it; ok is false
// when nothing is due.
func (s *Store) ClaimVM(ctx context.Context, owner string, lease time.Duration) (VM, bool, error) {
	if owner == "" || lease <= 0 {
		return VM{}, false, E(ErrInvalid, "", "a claim needs an owner and a positive lease")
	}
	if s.dialect == migrations.Postgres {
		return s.claimPostgres(ctx, owner, lease)
	}
	return s.claimGuarded(ctx, owner, lease)
}

// claimPostgres claims in one statement; SKIP LOCKED lets parallel workers
// pass over the row another worker is claiming instead of waiting for it.
func (s *Store) claimPostgres(ctx context.Context, owner string, lease time.Duration) (VM, bool, error) {
	ts := now()
	var vms []VM
	err := s.db.WithContext(ctx).Raw(`UPDATE vms SET lease_owner = ?, lease_until = ?
		WHERE id = (SELECT id FROM vms WHERE `+dueClause+` ORDER BY `+dueOrder+` LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING *`, owner, ts.Add(lease), true, ts, ts).Scan(&vms).Error
	if err != nil {
		return VM{}, false, fmt.Errorf("claim vm: %w", err)
	}
	if len(vms) == 0 {
		return VM{}, false, nil
	}
	return vms[0], true, nil
}

// claimGuarded claims on SQLite, which has no row locks: it reads a few
// candidates, then takes one with an UPDATE that repeats the whole due
// condition, so of two workers racing for a row exactly one changes it.
func (s *Store) claimGuarded(ctx context.Context, owner string, lease time.Duration) (VM, bool, error) {
	db := s.db.WithContext(ctx)
	// Other workers may take every candidate of a round; look again rather
	// than report nothing due while due VMs remain.
	for range claimRounds {
		ts := now()
		var ids []string
		if err := db.Model(&VM{}).Where(dueClause, true, ts, ts).Order(dueOrder).
			Limit(claimCandidates).Pluck("id", &ids).Error; err != nil {
			return VM{}, false, fmt.Errorf("find due vms: %w", err)
		}
		if len(ids) == 0 {
			return VM{}, false, nil
		}
		for _, id := range ids {
			res := db.Model(&VM{}).Where("id = ? AND "+dueClause, id, true, ts, ts).
				UpdateColumns(map[string]any{"lease_owner": owner, "lease_until": ts.Add(lease)})
			if res.Error != nil {
				return VM{}, false, fmt.Errorf("claim vm: %w", res.Error)
			}
			if res.RowsAffected != 1 {
				continue // another worker was faster
			}
			var vm VM
			if err := db.Where("id = ? AND lease_owner = ?", id, owner).Take(&vm).Error; err != nil {
				return VM{}, false, fmt.Errorf("load claimed vm: %w", err)
			}
			return vm, true, nil
		}
	}
	return VM{}, false, nil
}

func errLeaseLost() error { return E(ErrConflict, "", "lease lost") }

// RenewLease extends owner's lease on a VM; it fails with ErrConflict
// ("lease lost") when another worker holds the VM or the work was finished.
func (s *Store) RenewLease(ctx context.Context, vmID, owner string, lease time.Duration) error {
	res := s.db.WithContext(ctx).Model(&VM{}).
		Where("id = ? AND lease_owner = ? AND lease_until IS NOT NULL", vmID, owner).
		UpdateColumn("lease_until", now().Add(lease))
	if res.Error != nil {
		return fmt.Errorf("renew lease: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return errLeaseLost()
	}
	return nil
}

// outstandingOps are the operation states that still ask for work.
func outstandingOps() []string { return []string{OpQueued, OpRunning} }

// FinishWork ends owner's turn on a VM and releases the lease. When done,
// the VM stops needing work unless the portal asked for more meanwhile:
// every portal request queues an operation, so an operation still queued or
// running at this point means the worker has not seen it. (updated_at would
// not do: the provisioner's own writes during the turn bump it too.) When not
// done, the VM comes due again after requeueAfter.
func (s *Store) FinishWork(ctx context.Context, vmID, owner string, done bool, requeueAfter time.Duration) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Write the row first: on PostgreSQL this waits for a portal
		// transaction that holds it, and the operations count below then
		// sees what that transaction queued (read committed takes a new
		// snapshot per statement). On SQLite the transaction holds the
		// database write lock from its start.
		ts := now()
		res := tx.Model(&VM{}).Where("id = ? AND lease_owner = ?", vmID, owner).
			UpdateColumns(map[string]any{"lease_owner": "", "lease_until": nil})
		if res.Error != nil {
			return fmt.Errorf("finish work: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errLeaseLost()
		}
		upd := map[string]any{"next_attempt_at": ts.Add(max(requeueAfter, 0))}
		if done {
			var pending int64
			if err := tx.Model(&Operation{}).Where("vm_id = ? AND state IN ?", vmID, outstandingOps()).
				Count(&pending).Error; err != nil {
				return fmt.Errorf("count pending operations: %w", err)
			}
			upd = map[string]any{"attempts": 0, "last_error": "", "needs_work": pending > 0, "next_attempt_at": ts}
		}
		if err := tx.Model(&VM{}).Where("id = ?", vmID).UpdateColumns(upd).Error; err != nil {
			return fmt.Errorf("finish work: %w", err)
		}
		return nil
	})
}

// maxReason bounds the failure reason kept on a VM.
const maxReason = 1000

// FailAttempt records that owner's turn on a VM failed at step and releases
// the lease. The VM comes due again after backoff(attempts); once attempts
// reach maxAttempts the provisioner gives up: the VM goes to state error
// with the reason, and waits for staff to retry it.
func (s *Store) FailAttempt(ctx context.Context, vmID, owner, step string, err error, maxAttempts int, backoff func(attempt int) time.Duration) (bool, error) {
	if err == nil {
		err = errors.New("unknown error")
	}
	if step == "" {
		step = "reconcile"
	}
	reason := []rune(clean(step) + ": " + strings.ToValidUTF8(strings.ReplaceAll(err.Error(), "\x00", ""), "?"))
	if len(reason) > maxReason {
		reason = append(reason[:maxReason], '…')
	}
	gaveUp := false
	txErr := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var vm VM
		res := tx.Model(&VM{}).Where("id = ? AND lease_owner = ?", vmID, owner).
			UpdateColumns(map[string]any{"lease_owner": "", "lease_until": nil, "attempts": gorm.Expr("attempts + 1")})
		if res.Error != nil {
			return fmt.Errorf("record failed attempt: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errLeaseLost()
		}
		if err := tx.Where("id = ?", vmID).Take(&vm).Error; err != nil {
			return fmt.Errorf("load vm: %w", err)
		}
		ts := now()
		msg := string(reason)
		upd := map[string]any{"last_error": msg}
		if maxAttempts > 0 && vm.Attempts >= maxAttempts {
			gaveUp = true
			msg = fmt.Sprintf("%s (gave up after %d attempts)", msg, vm.Attempts)
			upd = map[string]any{"last_error": msg, "state": VMError, "needs_work": false, "next_attempt_at": nil, "updated_at": ts}
			entry := VMStep{ID: newID(), VMID: vmID, Step: clean(step), State: StepFailed,
				Message: "Stopped trying: " + msg, StartedAt: ts, FinishedAt: &ts}
			if err := tx.Create(&entry).Error; err != nil {
				return fmt.Errorf("record give-up step: %w", err)
			}
		} else {
			var wait time.Duration
			if backoff != nil {
				wait = max(backoff(vm.Attempts), 0)
			}
			upd["next_attempt_at"] = ts.Add(wait)
		}
		return tx.Model(&VM{}).Where("id = ?", vmID).UpdateColumns(upd).Error
	})
	return gaveUp, txErr
}

// StartStep opens an entry of a VM's timeline and returns its id.
func (s *Store) StartStep(ctx context.Context, vmID, step, message string) (string, error) {
	st := VMStep{ID: newID(), VMID: vmID, Step: clean(step), State: StepRunning, Message: clean(message), StartedAt: now()}
	if err := s.db.WithContext(ctx).Create(&st).Error; err != nil {
		return "", fmt.Errorf("start step %s: %w", step, err)
	}
	return st.ID, nil
}

// FinishStep closes a running timeline entry as done or failed. message
// replaces the customer-visible text when not empty; detail is for staff.
func (s *Store) FinishStep(ctx context.Context, stepID, state, message, detail string) error {
	if state != StepDone && state != StepFailed {
		return E(ErrInvalid, "state", "a step finishes as done or failed")
	}
	upd := map[string]any{"state": state, "detail": clean(detail), "finished_at": now()}
	if message != "" {
		upd["message"] = clean(message)
	}
	res := s.db.WithContext(ctx).Model(&VMStep{}).Where("id = ? AND state = ?", stepID, StepRunning).Updates(upd)
	if res.Error != nil {
		return fmt.Errorf("finish step: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return E(ErrConflict, "", "the step is not running")
	}
	return nil
}

// RetryVM lets staff send a VM the provisioner gave up on back to work.
func (s *Store) RetryVM(ctx context.Context, a Actor, vmID string) error {
	t := &Target{Type: "vm", ID: vmID}
	return s.change(ctx, a, "vm.retry", t, func(tx *gorm.DB) error {
		var vm VM
		if err := tx.Where("id = ? AND deleted_at IS NULL", vmID).Take(&vm).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("vm")
			}
			return err
		}
		t.Name, t.TenantID = vm.Name, vm.TenantID
		ts := now()
		res := tx.Model(&VM{}).Where("id = ? AND state = ?", vmID, VMError).
			Updates(map[string]any{"needs_work": true, "attempts": 0, "next_attempt_at": ts, "updated_at": ts})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return E(ErrInvalidTransition, "", "only a VM in state error can be retried; this one is "+vm.State)
		}
		step := VMStep{ID: newID(), VMID: vmID, Step: "retry", State: StepDone,
			Message: "Retry requested by staff", StartedAt: ts, FinishedAt: &ts}
		return tx.Create(&step).Error
	})
}

// NextOperation returns the oldest operation of a VM still to be carried
// out: queued, or running when a worker died during it.
func (s *Store) NextOperation(ctx context.Context, vmID string) (Operation, bool, error) {
	var ops []Operation
	err := s.db.WithContext(ctx).Where("vm_id = ? AND state IN ?", vmID, outstandingOps()).
		Order("created_at, id").Limit(1).Find(&ops).Error
	if err != nil {
		return Operation{}, false, fmt.Errorf("next operation: %w", err)
	}
	if len(ops) == 0 {
		return Operation{}, false, nil
	}
	return ops[0], true, nil
}

// StartOperation marks an operation running and counts the attempt; an
// operation resumed after a crash is already running and is started again.
// It fails with ErrConflict when the operation was finished or cancelled.
func (s *Store) StartOperation(ctx context.Context, opID string) error {
	ts := now()
	res := s.db.WithContext(ctx).Model(&Operation{}).Where("id = ? AND state IN ?", opID, outstandingOps()).
		Updates(map[string]any{"state": OpRunning, "started_at": ts, "attempts": gorm.Expr("attempts + 1")})
	if res.Error != nil {
		return fmt.Errorf("start operation: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return E(ErrConflict, "", "the operation is no longer queued")
	}
	return nil
}

// FinishOperation ends an operation as done or failed with a message the
// customer sees; it fails with ErrConflict when it had already ended.
func (s *Store) FinishOperation(ctx context.Context, opID, state, message string) error {
	if !slices.Contains([]string{OpDone, OpFailed}, state) {
		return E(ErrInvalid, "state", "an operation finishes as done or failed")
	}
	res := s.db.WithContext(ctx).Model(&Operation{}).Where("id = ? AND state IN ?", opID, outstandingOps()).
		Updates(map[string]any{"state": state, "message": clean(message), "finished_at": now()})
	if res.Error != nil {
		return fmt.Errorf("finish operation: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return E(ErrConflict, "", "the operation has already ended")
	}
	return nil
}
