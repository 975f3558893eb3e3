package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Machine event kinds the rack worker records. A result event's Detail is
// the id of the event it answers (the transition into a phase or the staff
// request), which is how the worker knows what is still to do.
const (
	EventPowerDone   = "power_done"
	EventPowerFailed = "power_failed"
	EventPowerDrift  = "power_drift"
)

// PowerPXECycle is the job of a phase that boots the machine's network
// environment: next boot from PXE, then power cycle.
const PowerPXECycle = "pxe_cycle"

// BootModeParam is the IPMI power parameter saying how a machine boots
// from the network: BootModeBIOS (the default) or BootModeUEFI. The rack
// worker reads it when it sets the next boot device; it is not a driver
// setting.
const BootModeParam = "boot_mode"

// Boot modes.
const (
	BootModeBIOS = "bios"
	BootModeUEFI = "uefi"
)

// checkBootMode validates and normalises the boot_mode parameter.
func checkBootMode(powerType string, params map[string]string) error {
	v, ok := params[BootModeParam]
	if !ok {
		return nil
	}
	v = strings.ToLower(v)
	if v != BootModeBIOS && v != BootModeUEFI {
		return E(ErrInvalid, "power_params", fmt.Sprintf("boot_mode %q is not a boot mode; use bios or uefi", clean(v)))
	}
	if powerType != PowerIPMI {
		return E(ErrInvalid, "power_params", "boot_mode applies to ipmi power only")
	}
	params[BootModeParam] = v
	return nil
}

// pxeStates are the states whose entry powers the machine into its boot
// environment.
func pxeStates() []string {
	return []string{MachineCommissioning, MachineDeploying, MachineReleasing, MachineRescue}
}

// PowerJob is a power command the rack worker has still to carry out.
type PowerJob struct {
	// EventID is the event the job answers.
	EventID string
	At      time.Time
	// Action is power_on, power_off, power_cycle or pxe_cycle.
	Action  string
	Machine Machine
	// TakenOverFrom names the worker whose expired claim ClaimPowerJob
	// took over; "" for a fresh claim.
	TakenOverFrom string
}

// Power jobs are claimed, so that rack workers in several processes on one
// database carry each job out once and talk to each BMC one at a time:
//
//   - a claim is a machine_power_claims row keyed by the job's event: the
//     INSERT of a fresh claim, or the takeover of one whose lease ran out,
//     is one guarded statement, so of two workers exactly one wins;
//   - the machine's power lease (power_lease_owner/until) is taken by a
//     guarded UPDATE in the same transaction, and by power polls alone;
//   - recording the result deletes the claim and releases the machine in
//     the transaction that adds the result event, and only for the worker
//     that still holds the claim.
//
// A worker that dies mid-job leaves both to expire; the lease is longer
// than a command may take, so a live worker never loses its claim.
//
// lockMachineFirst: every transaction here writes the machine row before
// any claim row, as deleting a machine does (its claims go by cascade), so
// that on PostgreSQL two of them never wait for each other in a circle.

// powerClaim is one claimed power job.
type powerClaim struct {
	EventID    string `gorm:"column:event_id;primaryKey"`
	MachineID  string
	Owner      string
	ClaimedAt  time.Time
	LeaseUntil time.Time
}

// TableName keeps the table name plain.
func (powerClaim) TableName() string { return "machine_power_claims" }

// machineFree selects machines whose power lease is free, expired or
// already owner's; its parameters are owner and the current time.
const machineFree = "(power_lease_owner = '' OR power_lease_owner = ? OR power_lease_until IS NULL OR power_lease_until < ?)"

func errClaimLost() error {
	return E(ErrConflict, "", "the claim on this power work was lost: another worker took it over or the machine was deleted")
}

func checkClaimer(owner string, lease time.Duration) error {
	if owner == "" || lease <= 0 {
		return E(ErrInvalid, "", "a claim needs an owner and a positive lease")
	}
	return nil
}

// PowerJobs lists the power commands not yet carried out, oldest first:
// one pxe_cycle for each machine that entered commissioning, deploying,
// releasing or rescue and has not been powered for it, and the staff
// requests. Only what was asked since since counts: older work is stale
// (a worker starting after an outage must not reboot a machine staff put
// in rescue yesterday) and is left alone.
func (s *Store) PowerJobs(ctx context.Context, since time.Time) ([]PowerJob, error) {
	db := s.db.WithContext(ctx)
	answered := "NOT EXISTS (SELECT 1 FROM machine_events r WHERE r.machine_id = machine_events.machine_id AND r.kind IN ? AND r.detail = machine_events.id)"
	results := []string{EventPowerDone, EventPowerFailed}
	var ms []Machine
	if err := db.Where("state IN ?", pxeStates()).Order("state_changed_at").Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("list machines in a boot phase: %w", err)
	}
	var jobs []PowerJob
	byID := map[string]Machine{}
	for _, m := range ms {
		byID[m.ID] = m
		var ev MachineEvent
		err := db.Where("machine_id = ? AND kind = ? AND to_state = ?", m.ID, EventTransition, m.State).
			Order("at DESC, id DESC").Take(&ev).Error
		if errIsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find phase entry: %w", err)
		}
		if ev.At.Before(since.UTC()) {
			continue
		}
		var n int64
		if err := db.Model(&MachineEvent{}).Where("machine_id = ? AND kind IN ? AND detail = ?", m.ID, results, ev.ID).Count(&n).Error; err != nil {
			return nil, fmt.Errorf("check phase power: %w", err)
		}
		if n == 0 {
			jobs = append(jobs, PowerJob{EventID: ev.ID, At: ev.At, Action: PowerPXECycle, Machine: m})
		}
	}
	var reqs []MachineEvent
	if err := db.Where("kind = ? AND at >= ?", EventPowerRequested, since.UTC()).Where(answered, results).
		Order("at, id").Find(&reqs).Error; err != nil {
		return nil, fmt.Errorf("list power requests: %w", err)
	}
	for _, ev := range reqs {
		m, ok := byID[ev.MachineID]
		if !ok {
			var err error
			if m, err = takeMachine(db, ev.MachineID); err != nil {
				return nil, err
			}
			byID[m.ID] = m
		}
		jobs = append(jobs, PowerJob{EventID: ev.ID, At: ev.At, Action: ev.Detail, Machine: m})
	}
	if len(jobs) > 0 {
		// Jobs another worker is carrying out are not this caller's to try.
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.EventID
		}
		var held []string
		if err := db.Model(&powerClaim{}).Where("event_id IN ? AND lease_until >= ?", ids, now()).
			Pluck("event_id", &held).Error; err != nil {
			return nil, fmt.Errorf("list claimed power jobs: %w", err)
		}
		jobs = slices.DeleteFunc(jobs, func(j PowerJob) bool { return slices.Contains(held, j.EventID) })
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].At.Before(jobs[j].At) })
	return jobs, nil
}

// errNotClaimable rolls a claim back when the job is not the caller's to run.
var errNotClaimable = errors.New("power job not claimable")

// ClaimPowerJob gives the job answering eventID to owner for lease, with
// the power lease on its machine, in one transaction. ok is false, and
// nothing changes, when another worker holds the job or the machine, or the
// job is done, stale (asked for before since) or no longer wanted (the
// machine left the phase that asked for it). A claim whose lease ran out is
// taken over: its worker died mid-job. The job comes with the machine as it
// is now.
func (s *Store) ClaimPowerJob(ctx context.Context, eventID, owner string, lease time.Duration, since time.Time) (job PowerJob, ok bool, err error) {
	if err := checkClaimer(owner, lease); err != nil {
		return PowerJob{}, false, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ts := now()
		var ev MachineEvent
		if err := tx.Where("id = ?", eventID).Take(&ev).Error; err != nil {
			if errIsNotFound(err) {
				return errNotClaimable // the machine was deleted
			}
			return fmt.Errorf("load power job: %w", err)
		}
		var prev powerClaim
		err := tx.Where("event_id = ?", eventID).Take(&prev).Error
		switch {
		case errIsNotFound(err):
		case err != nil:
			return fmt.Errorf("load power claim: %w", err)
		case !prev.LeaseUntil.Before(ts):
			return errNotClaimable // held; the guarded statement below would say so too
		case prev.Owner != owner:
			job.TakenOverFrom = prev.Owner
		}
		// The machine first (see lockMachineFirst), then the job.
		res := tx.Model(&Machine{}).Where("id = ? AND "+machineFree, ev.MachineID, owner, ts).
			UpdateColumns(map[string]any{"power_lease_owner": owner, "power_lease_until": ts.Add(lease)})
		if res.Error != nil {
			return fmt.Errorf("lease machine: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errNotClaimable // deleted, or another worker is talking to its BMC
		}
		// One statement claims a free job or takes over an expired claim;
		// of two workers racing for the job exactly one changes the row.
		res = tx.Exec(`INSERT INTO machine_power_claims (event_id, machine_id, owner, claimed_at, lease_until)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (event_id) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at, lease_until = excluded.lease_until
			WHERE machine_power_claims.lease_until < ?`, ev.ID, ev.MachineID, owner, ts, ts.Add(lease), ts)
		if res.Error != nil {
			return fmt.Errorf("claim power job: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errNotClaimable
		}
		// Checked last, holding both: a result the previous holder recorded
		// (in the transaction that freed the machine and ended its claim)
		// is visible now.
		j, wanted, err := powerJobOf(tx, ev, since)
		if err != nil {
			return err
		}
		if !wanted {
			return errNotClaimable
		}
		j.TakenOverFrom = job.TakenOverFrom
		job = j
		return nil
	})
	if errors.Is(err, errNotClaimable) {
		return PowerJob{}, false, nil
	}
	if err != nil {
		return PowerJob{}, false, err
	}
	return job, true, nil
}

// powerJobOf says whether ev still asks for power work and which: a staff
// request, or the latest entry into the machine's current boot phase, asked
// for since since and not yet answered.
func powerJobOf(tx *gorm.DB, ev MachineEvent, since time.Time) (PowerJob, bool, error) {
	if ev.At.Before(since.UTC()) {
		return PowerJob{}, false, nil
	}
	m, err := takeMachine(tx, ev.MachineID)
	if errors.Is(err, ErrNotFound) {
		return PowerJob{}, false, nil
	}
	if err != nil {
		return PowerJob{}, false, err
	}
	job := PowerJob{EventID: ev.ID, At: ev.At, Machine: m}
	switch ev.Kind {
	case EventPowerRequested:
		job.Action = ev.Detail
	case EventTransition:
		if ev.ToState != m.State || !slices.Contains(pxeStates(), m.State) {
			return PowerJob{}, false, nil
		}
		var latest MachineEvent
		if err := tx.Where("machine_id = ? AND kind = ? AND to_state = ?", m.ID, EventTransition, m.State).
			Order("at DESC, id DESC").Take(&latest).Error; err != nil {
			return PowerJob{}, false, fmt.Errorf("find phase entry: %w", err)
		}
		if latest.ID != ev.ID {
			return PowerJob{}, false, nil
		}
		job.Action = PowerPXECycle
	default:
		return PowerJob{}, false, nil
	}
	var n int64
	if err := tx.Model(&MachineEvent{}).Where("machine_id = ? AND kind IN ? AND detail = ?", m.ID,
		[]string{EventPowerDone, EventPowerFailed}, ev.ID).Count(&n).Error; err != nil {
		return PowerJob{}, false, fmt.Errorf("check power job answered: %w", err)
	}
	return job, n == 0, nil
}

// ReleasePowerJob gives up owner's claim on a job without a result, and
// its machine's power lease, so that another worker may carry the job out
// at once (a worker shutting down mid-job). Releasing what owner does not
// hold changes nothing.
func (s *Store) ReleasePowerJob(ctx context.Context, eventID, machineID, owner string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := releaseMachine(tx, machineID, owner); err != nil {
			return err
		}
		if err := tx.Where("event_id = ? AND owner = ?", eventID, owner).Delete(&powerClaim{}).Error; err != nil {
			return fmt.Errorf("release power claim: %w", err)
		}
		return nil
	})
}

// ReleaseMachine frees owner's power lease on a machine without recording
// anything (a worker shutting down mid-poll); it changes nothing when owner
// does not hold the lease.
func (s *Store) ReleaseMachine(ctx context.Context, machineID, owner string) error {
	return releaseMachine(s.db.WithContext(ctx), machineID, owner)
}

// releaseMachine frees a machine's power lease if owner holds it.
func releaseMachine(tx *gorm.DB, machineID, owner string) error {
	if err := tx.Model(&Machine{}).Where("id = ? AND power_lease_owner = ?", machineID, owner).
		UpdateColumns(map[string]any{"power_lease_owner": "", "power_lease_until": nil}).Error; err != nil {
		return fmt.Errorf("release machine: %w", err)
	}
	return nil
}

// LeaseMachine gives owner the power lease on a machine for lease, to read
// its power state; ok is false when another worker holds it.
func (s *Store) LeaseMachine(ctx context.Context, machineID, owner string, lease time.Duration) (bool, error) {
	if err := checkClaimer(owner, lease); err != nil {
		return false, err
	}
	ts := now()
	res := s.db.WithContext(ctx).Model(&Machine{}).Where("id = ? AND "+machineFree, machineID, owner, ts).
		UpdateColumns(map[string]any{"power_lease_owner": owner, "power_lease_until": ts.Add(lease)})
	if res.Error != nil {
		return false, fmt.Errorf("lease machine: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// PowerResult is how a power job went.
type PowerResult struct {
	MachineID string
	EventID   string // the job's EventID
	// Owner is the worker holding the job's claim.
	Owner string
	OK    bool
	// Message is what staff read on the timeline: what was done, or the
	// driver's error.
	Message string
	// State is the power state read after the command; "" when unknown.
	State string
}

// RecordPowerResult records a job's outcome as an event answering the job,
// and the power state read afterwards; it ends the claim and releases the
// machine. Only the claim's owner records: a worker whose claim was taken
// over gets ErrConflict and changes nothing.
func (s *Store) RecordPowerResult(ctx context.Context, r PowerResult) error {
	if r.Owner == "" {
		return E(ErrInvalid, "", "a power result needs the owner of the job's claim")
	}
	kind := EventPowerDone
	if !r.OK {
		kind = EventPowerFailed
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Release the machine if still ours; the row is written (locked)
		// either way, before the claim (see lockMachineFirst).
		res := tx.Exec(`UPDATE machines SET
			power_lease_until = CASE WHEN power_lease_owner = ? THEN NULL ELSE power_lease_until END,
			power_lease_owner = CASE WHEN power_lease_owner = ? THEN '' ELSE power_lease_owner END
			WHERE id = ?`, r.Owner, r.Owner, r.MachineID)
		if res.Error != nil {
			return fmt.Errorf("release machine: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errClaimLost() // the machine was deleted
		}
		res = tx.Where("event_id = ? AND owner = ?", r.EventID, r.Owner).Delete(&powerClaim{})
		if res.Error != nil {
			return fmt.Errorf("end power claim: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errClaimLost()
		}
		if err := addEvent(tx, r.MachineID, kind, "", "", r.Message, r.EventID); err != nil {
			return err
		}
		if r.State == "" {
			return nil
		}
		ts := now()
		if err := tx.Model(&Machine{}).Where("id = ?", r.MachineID).
			Updates(map[string]any{"power_state": r.State, "power_checked_at": ts}).Error; err != nil {
			return fmt.Errorf("record power state: %w", err)
		}
		return nil
	})
}

// MachinesToPoll lists machines whose driver can tell their power state
// (IPMI, virsh), whose state was last read before before (or never) and
// that no worker is talking to.
func (s *Store) MachinesToPoll(ctx context.Context, before time.Time) ([]Machine, error) {
	var ms []Machine
	err := s.db.WithContext(ctx).Where("power_type IN ? AND (power_checked_at IS NULL OR power_checked_at < ?)",
		[]string{PowerIPMI, PowerVirsh}, before.UTC()).
		Where("(power_lease_owner = '' OR power_lease_until IS NULL OR power_lease_until < ?)", now()).
		Order("name").Find(&ms).Error
	if err != nil {
		return nil, fmt.Errorf("list machines to poll: %w", err)
	}
	return ms, nil
}

// RecordPowerState stores a power state owner polled under its lease on
// the machine (LeaseMachine), and releases the lease. A change between on
// and off that no command explains is drift: it is recorded as an event and
// reported. An empty state only marks the machine as checked. A worker whose
// lease was taken over gets ErrConflict and changes nothing.
func (s *Store) RecordPowerState(ctx context.Context, machineID, owner, state string) (drift bool, err error) {
	if owner == "" {
		return false, E(ErrInvalid, "", "a power state needs the owner of the machine's lease")
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := takeMachine(tx, machineID)
		if err != nil {
			return err
		}
		rel := tx.Model(&Machine{}).Where("id = ? AND power_lease_owner = ?", cur.ID, owner).
			UpdateColumns(map[string]any{"power_lease_owner": "", "power_lease_until": nil})
		if rel.Error != nil {
			return fmt.Errorf("release machine: %w", rel.Error)
		}
		if rel.RowsAffected != 1 {
			return errClaimLost()
		}
		upd := map[string]any{"power_checked_at": now()}
		if state != "" {
			upd["power_state"] = state
		}
		res := tx.Model(&Machine{}).Where("id = ? AND power_state = ?", cur.ID, cur.PowerState).Updates(upd)
		if res.Error != nil {
			return fmt.Errorf("record power state: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return nil // a command recorded a newer state meanwhile
		}
		known := func(v string) bool { return v == "on" || v == "off" }
		if known(cur.PowerState) && known(state) && state != cur.PowerState {
			drift = true
			return addEvent(tx, cur.ID, EventPowerDrift, "", "", "power is "+state+" but was "+cur.PowerState+" with no command to change it", "")
		}
		return nil
	})
	return drift, err
}
