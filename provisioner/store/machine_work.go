package store

import (
	"context"
	"fmt"
	"sort"
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
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].At.Before(jobs[j].At) })
	return jobs, nil
}

// PowerResult is how a power job went.
type PowerResult struct {
	MachineID string
	EventID   string // the job's EventID
	OK        bool
	// Message is what staff read on the timeline: what was done, or the
	// driver's error.
	Message string
	// State is the power state read after the command; "" when unknown.
	State string
}

// RecordPowerResult records a job's outcome as an event answering the job,
// and the power state read afterwards.
func (s *Store) RecordPowerResult(ctx context.Context, r PowerResult) error {
	kind := EventPowerDone
	if !r.OK {
		kind = EventPowerFailed
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
// (IPMI, virsh) and whose state was last read before before (or never).
func (s *Store) MachinesToPoll(ctx context.Context, before time.Time) ([]Machine, error) {
	var ms []Machine
	err := s.db.WithContext(ctx).Where("power_type IN ? AND (power_checked_at IS NULL OR power_checked_at < ?)",
		[]string{PowerIPMI, PowerVirsh}, before.UTC()).Order("name").Find(&ms).Error
	if err != nil {
		return nil, fmt.Errorf("list machines to poll: %w", err)
	}
	return ms, nil
}

// RecordPowerState stores a polled power state. A change between on and
// off that no command explains is drift: it is recorded as an event and
// reported. An empty state only marks the machine as checked.
func (s *Store) RecordPowerState(ctx context.Context, machineID, state string) (drift bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := takeMachine(tx, machineID)
		if err != nil {
			return err
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
