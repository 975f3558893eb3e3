package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Machine lifecycle states.
const (
	MachineNew                 = "new"
	MachineCommissioning       = "commissioning"
	MachineReady               = "ready"
	MachineDeploying           = "deploying"
	MachineDeployed            = "deployed"
	MachineReleasing           = "releasing"
	MachineFailedCommissioning = "failed_commissioning"
	MachineFailedDeployment    = "failed_deployment"
	MachineBroken              = "broken"
	MachineRescue              = "rescue"
)

// MachineStates lists every lifecycle state in journey order.
func MachineStates() []string {
	return []string{MachineNew, MachineCommissioning, MachineReady, MachineDeploying, MachineDeployed, MachineReleasing,
		MachineFailedCommissioning, MachineFailedDeployment, MachineBroken, MachineRescue}
}

// Staff actions on a machine. The power actions change no state: the
// provisioner carries them out and records the result as an event.
const (
	MachineCommission  = "commission"
	MachineDeploy      = "deploy"
	MachineRelease     = "release"
	MachineMarkBroken  = "mark_broken"
	MachineMarkFixed   = "mark_fixed"
	MachineEnterRescue = "rescue"
	MachineExitRescue  = "exit_rescue"
	MachinePowerOn     = "power_on"
	MachinePowerOff    = "power_off"
	MachinePowerCycle  = "power_cycle"
)

// Power driver types.
const (
	PowerIPMI   = "ipmi"
	PowerWoL    = "wol"
	PowerVirsh  = "virsh"
	PowerManual = "manual"
)

// Machine event kinds.
const (
	EventTransition     = "transition"
	EventPowerRequested = "power_requested"
	EventDiskErased     = "disk_erased"
	EventEnlisted       = "enlisted"
)

// MachineTransition is one row of the lifecycle table: the states an action
// is allowed from and the state it leads to.
type MachineTransition struct {
	From []string
	// To is the state the action leads to. mark_fixed goes to ready only
	// when commissioning has recorded an inventory (new otherwise), and
	// exit_rescue goes back to the state the machine was rescued from.
	To string
}

// MachineTransitions is the lifecycle as a table, action → (from, to). Agent
// reports and phase timeouts move machines out of commissioning, deploying
// and releasing; they are not staff actions and so not in this table.
func MachineTransitions() map[string]MachineTransition {
	return map[string]MachineTransition{
		MachineCommission:  {From: []string{MachineNew, MachineReady, MachineFailedCommissioning, MachineBroken}, To: MachineCommissioning},
		MachineDeploy:      {From: []string{MachineReady}, To: MachineDeploying},
		MachineRelease:     {From: []string{MachineDeployed, MachineFailedDeployment}, To: MachineReleasing},
		MachineMarkBroken:  {From: without(MachineStates(), MachineBroken), To: MachineBroken},
		MachineMarkFixed:   {From: []string{MachineBroken}, To: MachineReady},
		MachineEnterRescue: {From: []string{MachineDeployed, MachineReady, MachineBroken}, To: MachineRescue},
		MachineExitRescue:  {From: []string{MachineRescue}, To: ""},
	}
}

// MachinePowerActions are the power commands staff may queue in any state.
func MachinePowerActions() []string {
	return []string{MachinePowerOn, MachinePowerOff, MachinePowerCycle}
}

// MachineActionsFrom lists the state-changing actions allowed from state,
// in a stable order.
func MachineActionsFrom(state string) []string {
	var out []string
	for _, a := range []string{MachineCommission, MachineDeploy, MachineRelease, MachineEnterRescue, MachineExitRescue, MachineMarkFixed, MachineMarkBroken} {
		if slices.Contains(MachineTransitions()[a].From, state) {
			out = append(out, a)
		}
	}
	return out
}

func without(list []string, drop string) []string {
	return slices.DeleteFunc(list, func(s string) bool { return s == drop })
}

// agentStates are the states whose boot environment reports back with a
// one-time token, by agent mode.
func agentStates() map[string]string {
	return map[string]string{"commission": MachineCommissioning, "deploy": MachineDeploying, "release": MachineReleasing}
}

// Machine is a bare-metal server managed through its BMC and PXE.
type Machine struct {
	ID             string
	Name           string
	State          string
	StateChangedAt time.Time
	LastError      string
	PowerType      string
	// PowerParams are the driver parameters without secrets, as JSON.
	PowerParams string
	// PowerSecret is the BMC password sealed by the portal; the store never
	// sees it in clear.
	PowerSecret    string
	PowerState     string
	PowerCheckedAt *time.Time
	Sensors        string // the BMC's latest readings as JSON; see SensorReadings
	SensorsReadAt  *time.Time
	CPUModel       string `gorm:"column:cpu_model"`
	Cores          int64
	MemoryMiB      int64 `gorm:"column:memory_mib"`
	// Inventory is the commissioning agent's report, as JSON.
	Inventory      string
	AgentTokenHash string
	DeployImageID  string
	DeployDisk     string
	DeployKVMHost  bool `gorm:"column:deploy_kvm_host"`
	ReleaseErase   bool
	SSHHostKey     string `gorm:"column:ssh_host_key"`
	HostID         string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TableName keeps the table name plain.
func (Machine) TableName() string { return "machines" }

// Params decodes the power parameters.
func (m Machine) Params() map[string]string {
	out := map[string]string{}
	_ = json.Unmarshal([]byte(m.PowerParams), &out)
	return out
}

// MachineMAC is one network address of a machine.
type MachineMAC struct {
	MAC       string `gorm:"column:mac;primaryKey"`
	MachineID string
	Boot      bool
}

// TableName keeps the table name plain.
func (MachineMAC) TableName() string { return "machine_macs" }

// MachineEvent is one entry of a machine's timeline.
type MachineEvent struct {
	ID        string
	MachineID string
	At        time.Time
	Kind      string
	FromState string
	ToState   string
	Message   string
	Detail    string
}

// TableName keeps the table name plain.
func (MachineEvent) TableName() string { return "machine_events" }

// MachineSummary is a machine with its MACs, for lists.
type MachineSummary struct {
	Machine
	MACs []string
}

// MachineDetail is a machine with its MACs and latest events, oldest first.
type MachineDetail struct {
	Machine
	MACs   []MachineMAC
	Events []MachineEvent
}

// MachineEventLimit is how many of the latest events GetMachine returns.
const MachineEventLimit = 50

// MachineInput is what staff enter to enlist a machine or change one.
type MachineInput struct {
	Name string
	// MACs are the machine's network addresses; the first is the boot MAC.
	// On update, nil keeps the current ones.
	MACs        []string
	PowerType   string
	PowerParams map[string]string
	// PowerSecretSealed is the BMC password already sealed by the caller.
	// On update, "" keeps the stored one (cleared for types without one).
	PowerSecretSealed string
}

// MachineActionInput carries what an action needs.
type MachineActionInput struct {
	Reason  string
	ImageID string // deploy: image id or name
	Disk    string // deploy: target disk, e.g. sda
	// KVMHost: the deploy registers the machine as a KVM host when it
	// reports (the image must run libvirt).
	KVMHost bool
	// Erase: a release quick-wipes the machine's disks.
	Erase bool
}

// DiscoveredMAC is a MAC that PXE-booted on a managed subnet without being
// enlisted.
type DiscoveredMAC struct {
	MAC         string `gorm:"column:mac;primaryKey"`
	SubnetID    string
	VendorClass string
	Arch        int
	UserClass   string
	FirstSeen   time.Time
	LastSeen    time.Time
}

// TableName keeps the table name plain.
func (DiscoveredMAC) TableName() string { return "discovered_macs" }

var (
	powerParamKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	diskName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
)

// secretParam tells parameter names that would carry a credential in clear.
func secretParam(k string) bool {
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || k == "pass" || k == "passwd"
}

// requiredPowerParams are what each driver cannot work without.
func requiredPowerParams(typ string) []string {
	switch typ {
	case PowerIPMI:
		return []string{"address"}
	case PowerWoL:
		return []string{"mac"}
	case PowerVirsh:
		return []string{"domain"}
	}
	return nil
}

func (in *MachineInput) validate(update bool) error {
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	in.PowerType = strings.ToLower(strings.TrimSpace(in.PowerType))
	if in.PowerType == "" {
		in.PowerType = PowerManual
	}
	if !hostnameLabel.MatchString(in.Name) {
		return E(ErrInvalid, "name", "use a hostname label: 1–63 lower-case letters, digits and dashes, not starting or ending with a dash")
	}
	if in.MACs != nil || !update {
		var macs []string
		for _, raw := range in.MACs {
			if strings.TrimSpace(raw) == "" {
				continue
			}
			m, err := NormalizeMAC(raw)
			if err != nil {
				return E(ErrInvalid, "macs", fmt.Sprintf("%q is not a MAC address; write it like 52:54:00:12:34:56", clean(raw)))
			}
			if !slices.Contains(macs, m) {
				macs = append(macs, m)
			}
		}
		if len(macs) == 0 {
			return E(ErrInvalid, "macs", "give at least one MAC address: the one the machine PXE-boots from")
		}
		if len(macs) > 32 {
			return E(ErrInvalid, "macs", "give at most 32 MAC addresses")
		}
		in.MACs = macs
	}
	switch in.PowerType {
	case PowerIPMI, PowerWoL, PowerVirsh, PowerManual:
	default:
		return E(ErrInvalid, "power_type", "the power type must be ipmi, wol, virsh or manual")
	}
	params := map[string]string{}
	for k, v := range in.PowerParams {
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if secretParam(k) {
			return E(ErrInvalid, "power_params", "credentials are not parameters; send the password in its own field so it is stored encrypted")
		}
		if !powerParamKey.MatchString(k) {
			return E(ErrInvalid, "power_params", fmt.Sprintf("parameter name %q: use lower-case letters, digits and underscores", clean(k)))
		}
		if len(v) > 255 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return E(ErrInvalid, "power_params", "parameter "+k+" must be one line of at most 255 characters")
		}
		if v != "" {
			params[k] = v
		}
	}
	if len(params) > 16 {
		return E(ErrInvalid, "power_params", "give at most 16 power parameters")
	}
	for _, k := range requiredPowerParams(in.PowerType) {
		if params[k] == "" {
			return E(ErrInvalid, "power_params", fmt.Sprintf("%s power needs the parameter %s", in.PowerType, k))
		}
	}
	if err := checkBootMode(in.PowerType, params); err != nil {
		return err
	}
	in.PowerParams = params
	if len(in.PowerSecretSealed) > 4096 {
		return E(ErrInvalid, "power_password", "the password is too long")
	}
	return nil
}

func paramsJSON(p map[string]string) string {
	if len(p) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(p) // map keys come out sorted
	return string(b)
}

// addMACs gives MACs to a machine; a MAC another machine holds is a conflict
// naming that machine. The MACs leave the discovered list.
func addMACs(tx *gorm.DB, machineID string, macs []string) error {
	var taken []struct {
		MAC  string
		Name string
	}
	if err := tx.Raw(`SELECT mm.mac, m.name FROM machine_macs mm JOIN machines m ON m.id = mm.machine_id
		WHERE mm.mac IN ? AND mm.machine_id <> ?`, macs, machineID).Scan(&taken).Error; err != nil {
		return fmt.Errorf("check machine macs: %w", err)
	}
	if len(taken) > 0 {
		return E(ErrConflict, "macs", fmt.Sprintf("MAC %s already belongs to machine %s", taken[0].MAC, taken[0].Name))
	}
	if err := tx.Where("machine_id = ?", machineID).Delete(&MachineMAC{}).Error; err != nil {
		return fmt.Errorf("replace machine macs: %w", err)
	}
	for i, m := range macs {
		if err := tx.Create(&MachineMAC{MAC: m, MachineID: machineID, Boot: i == 0}).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "macs", "MAC "+m+" already belongs to another machine")
			}
			return fmt.Errorf("add machine mac: %w", err)
		}
	}
	if err := tx.Where("mac IN ?", macs).Delete(&DiscoveredMAC{}).Error; err != nil {
		return fmt.Errorf("forget discovered macs: %w", err)
	}
	return nil
}

func addEvent(tx *gorm.DB, machineID, kind, from, to, message, detail string) error {
	ev := MachineEvent{ID: newID(), MachineID: machineID, At: now(), Kind: kind, FromState: from, ToState: to,
		Message: clean(message), Detail: strings.ToValidUTF8(strings.ReplaceAll(detail, "\x00", ""), "?")}
	if err := tx.Create(&ev).Error; err != nil {
		return fmt.Errorf("record machine event: %w", err)
	}
	return nil
}

func (s *Store) createMachine(tx *gorm.DB, in MachineInput, message string) (Machine, error) {
	ts := now()
	m := Machine{ID: newID(), Name: in.Name, State: MachineNew, StateChangedAt: ts, PowerType: in.PowerType,
		PowerParams: paramsJSON(in.PowerParams), PowerSecret: in.PowerSecretSealed, PowerState: "unknown", CreatedAt: ts, UpdatedAt: ts}
	if err := tx.Create(&m).Error; err != nil {
		if isDuplicate(err) {
			return Machine{}, E(ErrConflict, "name", "a machine called "+in.Name+" already exists")
		}
		return Machine{}, fmt.Errorf("create machine: %w", err)
	}
	if err := addMACs(tx, m.ID, in.MACs); err != nil {
		return Machine{}, err
	}
	return m, addEvent(tx, m.ID, EventEnlisted, "", MachineNew, message, "")
}

// EnlistMachine records a machine by hand; it starts in state new.
func (s *Store) EnlistMachine(ctx context.Context, a Actor, in MachineInput) (Machine, error) {
	var m Machine
	t := &Target{Type: "machine", Name: in.Name}
	err := s.change(ctx, a, "machine.enlist", t, func(tx *gorm.DB) error {
		if err := in.validate(false); err != nil {
			return err
		}
		t.Name = in.Name
		var err error
		if m, err = s.createMachine(tx, in, "enlisted by "+actorName(a)); err != nil {
			return err
		}
		t.ID = m.ID
		return nil
	})
	return m, err
}

func actorName(a Actor) string {
	if a.Email != "" {
		return a.Email
	}
	return "the system"
}

// ListMachines returns machines by name, optionally only those in state.
func (s *Store) ListMachines(ctx context.Context, p Page, state string) ([]MachineSummary, int, error) {
	q := s.db.WithContext(ctx).Model(&Machine{})
	if state != "" {
		q = q.Where("state = ?", state)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count machines: %w", err)
	}
	var ms []Machine
	if err := p.apply(q.Order("name, id")).Find(&ms).Error; err != nil {
		return nil, 0, fmt.Errorf("list machines: %w", err)
	}
	out := make([]MachineSummary, len(ms))
	ids := make([]string, len(ms))
	for i, m := range ms {
		out[i] = MachineSummary{Machine: m, MACs: []string{}}
		ids[i] = m.ID
	}
	if len(ids) > 0 {
		var macs []MachineMAC
		if err := s.db.WithContext(ctx).Where("machine_id IN ?", ids).Order("boot DESC, mac").Find(&macs).Error; err != nil {
			return nil, 0, fmt.Errorf("list machine macs: %w", err)
		}
		for _, mm := range macs {
			i := slices.Index(ids, mm.MachineID)
			out[i].MACs = append(out[i].MACs, mm.MAC)
		}
	}
	return out, int(total), nil
}

func takeMachine(tx *gorm.DB, idOrName string) (Machine, error) {
	var m Machine
	err := tx.Where("id = ? OR name = ?", idOrName, strings.ToLower(idOrName)).Take(&m).Error
	if errIsNotFound(err) {
		return Machine{}, notFound("machine")
	}
	if err != nil {
		return Machine{}, fmt.Errorf("load machine: %w", err)
	}
	return m, nil
}

// GetMachine returns a machine by id or name with its MACs (boot MAC first)
// and its latest events, oldest first.
func (s *Store) GetMachine(ctx context.Context, idOrName string) (MachineDetail, error) {
	db := s.db.WithContext(ctx)
	m, err := takeMachine(db, idOrName)
	if err != nil {
		return MachineDetail{}, err
	}
	d := MachineDetail{Machine: m}
	if err := db.Where("machine_id = ?", m.ID).Order("boot DESC, mac").Find(&d.MACs).Error; err != nil {
		return MachineDetail{}, fmt.Errorf("load machine macs: %w", err)
	}
	if err := db.Where("machine_id = ?", m.ID).Order("at DESC, id DESC").Limit(MachineEventLimit).Find(&d.Events).Error; err != nil {
		return MachineDetail{}, fmt.Errorf("load machine events: %w", err)
	}
	slices.Reverse(d.Events)
	return d, nil
}

// UpdateMachine changes a machine's name, MACs and power settings. An empty
// sealed secret keeps the stored one, except for power types that take
// none, where it is cleared.
func (s *Store) UpdateMachine(ctx context.Context, a Actor, id string, in MachineInput) (Machine, error) {
	var m Machine
	t := &Target{Type: "machine", ID: id, Name: in.Name}
	err := s.change(ctx, a, "machine.update", t, func(tx *gorm.DB) error {
		cur, err := takeMachine(tx, id)
		if err != nil {
			return err
		}
		t.ID, t.Name = cur.ID, cur.Name
		if err := in.validate(true); err != nil {
			return err
		}
		secret := cur.PowerSecret
		if in.PowerSecretSealed != "" {
			secret = in.PowerSecretSealed
		}
		if in.PowerType == PowerWoL || in.PowerType == PowerManual {
			secret = ""
		}
		upd := map[string]any{"name": in.Name, "power_type": in.PowerType, "power_params": paramsJSON(in.PowerParams),
			"power_secret": secret, "updated_at": now()}
		if in.PowerType != cur.PowerType {
			upd["power_state"] = "unknown"
			// The old driver's sensor readings say nothing about the new one.
			upd["sensors"], upd["sensors_read_at"] = "", nil
		}
		if err := tx.Model(&Machine{}).Where("id = ?", cur.ID).Updates(upd).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "a machine called "+in.Name+" already exists")
			}
			return fmt.Errorf("update machine: %w", err)
		}
		if in.MACs != nil {
			if err := addMACs(tx, cur.ID, in.MACs); err != nil {
				return err
			}
		}
		m, err = takeMachine(tx, cur.ID)
		return err
	})
	return m, err
}

// DeleteMachine forgets a machine. One that is deploying or deployed runs
// an operating system somebody relies on and must be released first.
func (s *Store) DeleteMachine(ctx context.Context, a Actor, id string) error {
	t := &Target{Type: "machine", ID: id}
	return s.change(ctx, a, "machine.delete", t, func(tx *gorm.DB) error {
		m, err := takeMachine(tx, id)
		if err != nil {
			return err
		}
		t.ID, t.Name = m.ID, m.Name
		if m.State == MachineDeploying || m.State == MachineDeployed {
			return E(ErrInvalidTransition, "", fmt.Sprintf("machine %s is %s; release it before deleting it", m.Name, m.State))
		}
		res := tx.Where("id = ? AND state = ?", m.ID, m.State).Delete(&Machine{})
		if res.Error != nil {
			return fmt.Errorf("delete machine: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return E(ErrConflict, "", "the machine changed meanwhile; try again")
		}
		// SQLite cascades only with foreign keys on; be explicit.
		if err := tx.Where("machine_id = ?", m.ID).Delete(&MachineMAC{}).Error; err != nil {
			return fmt.Errorf("delete machine macs: %w", err)
		}
		return tx.Where("machine_id = ?", m.ID).Delete(&MachineEvent{}).Error
	})
}

// moveMachine changes state from → to, guarded on the state read, clears
// the agent token and records the transition event.
func moveMachine(tx *gorm.DB, m Machine, to, reason string, extra map[string]any) error {
	upd := map[string]any{"state": to, "state_changed_at": now(), "updated_at": now(), "agent_token_hash": ""}
	for k, v := range extra {
		upd[k] = v
	}
	res := tx.Model(&Machine{}).Where("id = ? AND state = ?", m.ID, m.State).Updates(upd)
	if res.Error != nil {
		return fmt.Errorf("change machine state: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return E(ErrConflict, "", "the machine changed meanwhile; reload and try again")
	}
	return addEvent(tx, m.ID, EventTransition, m.State, to, reason, "")
}

func stateList(states []string) string {
	if len(states) == 1 {
		return states[0]
	}
	return strings.Join(states[:len(states)-1], ", ") + " or " + states[len(states)-1]
}

// MachineAction carries out a staff action: a lifecycle transition from the
// table, or a power command queued for the provisioner (recorded as an event).
func (s *Store) MachineAction(ctx context.Context, a Actor, id, action string, in MachineActionInput) (Machine, error) {
	var m Machine
	t := &Target{Type: "machine", ID: id}
	err := s.change(ctx, a, "machine."+clean(action), t, func(tx *gorm.DB) error {
		cur, err := takeMachine(tx, id)
		if err != nil {
			return err
		}
		t.ID, t.Name = cur.ID, cur.Name
		in.Reason = strings.TrimSpace(in.Reason)
		if len(in.Reason) > 500 {
			return E(ErrInvalid, "reason", "keep the reason under 500 characters")
		}
		if slices.Contains(MachinePowerActions(), action) {
			msg := strings.ReplaceAll(action, "_", " ") + " requested by " + actorName(a)
			if in.Reason != "" {
				msg += ": " + in.Reason
			}
			if err := addEvent(tx, cur.ID, EventPowerRequested, "", "", msg, action); err != nil {
				return err
			}
			m = cur
			return nil
		}
		tr, ok := MachineTransitions()[action]
		if !ok {
			return E(ErrInvalid, "type", "unknown action; use commission, deploy, release, mark_broken, mark_fixed, rescue, exit_rescue, power_on, power_off or power_cycle")
		}
		if !slices.Contains(tr.From, cur.State) {
			return E(ErrInvalidTransition, "", fmt.Sprintf("cannot %s machine %s: it is %s; %s is possible only from %s",
				strings.ReplaceAll(action, "_", " "), cur.Name, cur.State, action, stateList(tr.From)))
		}
		to, extra := tr.To, map[string]any{}
		reason := in.Reason
		switch action {
		case MachineMarkBroken:
			if reason == "" {
				return E(ErrInvalid, "reason", "say why the machine is broken")
			}
		case MachineMarkFixed:
			if cur.Inventory == "" {
				to = MachineNew
			}
			extra["last_error"] = ""
		case MachineExitRescue:
			to, err = rescuedFrom(tx, cur.ID)
			if err != nil {
				return err
			}
		case MachineDeploy:
			img, disk, err := deployTarget(tx, cur, in)
			if err != nil {
				return err
			}
			extra["deploy_image_id"], extra["deploy_disk"], extra["deploy_kvm_host"] = img.ID, disk, in.KVMHost
			if in.KVMHost {
				if err := checkKVMHostDeploy(tx, cur); err != nil {
					return err
				}
				disk += " as a KVM host"
			}
			if reason == "" {
				reason = "deploy " + img.Name + " to " + disk
			} else {
				reason = "deploy " + img.Name + " to " + disk + ": " + reason
			}
		case MachineCommission:
			extra["last_error"] = ""
		case MachineRelease:
			// Releasing a KVM host would take its customers' VMs with it.
			if cur.HostID != "" {
				var h Host
				err := tx.Select("id", "name").Where("id = ?", cur.HostID).Take(&h).Error
				if err == nil {
					return E(ErrConflict, "", "machine "+cur.Name+" is KVM host "+h.Name+"; delete that host before releasing the machine")
				}
				if !errIsNotFound(err) {
					return fmt.Errorf("check machine's host: %w", err)
				}
			}
			extra["release_erase"], extra["host_id"] = in.Erase, ""
			if in.Erase && reason != "" {
				reason = "release and erase the disks: " + reason
			} else if in.Erase {
				reason = "release and erase the disks, requested by " + actorName(a)
			}
		}
		if reason == "" {
			reason = strings.ReplaceAll(action, "_", " ") + " requested by " + actorName(a)
		}
		if err := moveMachine(tx, cur, to, reason, extra); err != nil {
			return err
		}
		m, err = takeMachine(tx, cur.ID)
		return err
	})
	return m, err
}

// rescuedFrom is the state the machine was in when it entered rescue.
func rescuedFrom(tx *gorm.DB, machineID string) (string, error) {
	var ev MachineEvent
	err := tx.Where("machine_id = ? AND kind = ? AND to_state = ?", machineID, EventTransition, MachineRescue).
		Order("at DESC, id DESC").Take(&ev).Error
	if errIsNotFound(err) || (err == nil && ev.FromState == "") {
		return MachineReady, nil
	}
	if err != nil {
		return "", fmt.Errorf("find rescue event: %w", err)
	}
	return ev.FromState, nil
}

func deployTarget(tx *gorm.DB, m Machine, in MachineActionInput) (Image, string, error) {
	ref := strings.TrimSpace(in.ImageID)
	if ref == "" {
		return Image{}, "", E(ErrInvalid, "image", "choose the image to deploy")
	}
	var img Image
	if err := tx.Where("(id = ? OR name = ?) AND enabled = ? AND kind = ?", ref, ref, true, ImageMachine).Take(&img).Error; err != nil {
		if errIsNotFound(err) {
			return Image{}, "", E(ErrInvalid, "image", "there is no enabled machine image by this name (VM images cannot be deployed to machines)")
		}
		return Image{}, "", fmt.Errorf("load image: %w", err)
	}
	disk := strings.TrimPrefix(strings.TrimSpace(in.Disk), "/dev/")
	if disk == "" {
		return Image{}, "", E(ErrInvalid, "disk", "choose the disk to write the image to")
	}
	if !diskName.MatchString(disk) {
		return Image{}, "", E(ErrInvalid, "disk", "give a disk name such as sda or nvme0n1")
	}
	if m.Inventory != "" {
		var inv struct {
			Disks []struct {
				Name string `json:"name"`
			} `json:"disks"`
		}
		if json.Unmarshal([]byte(m.Inventory), &inv) == nil && len(inv.Disks) > 0 {
			names := make([]string, len(inv.Disks))
			for i, d := range inv.Disks {
				names[i] = d.Name
			}
			if !slices.Contains(names, disk) {
				return Image{}, "", E(ErrInvalid, "disk", "the machine has no disk "+disk+"; it has "+strings.Join(names, ", "))
			}
		}
	}
	return img, disk, nil
}

func tokenHash(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// IssueAgentToken gives a machine whose boot environment reports back
// (commissioning, deploying, releasing) a fresh one-time token and returns
// it; only its SHA-256 is stored, and a new issue replaces the old one.
func (s *Store) IssueAgentToken(ctx context.Context, machineID string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate agent token: %w", err)
	}
	raw := base64.RawURLEncoding.EncodeToString(b)
	res := s.db.WithContext(ctx).Model(&Machine{}).
		Where("id = ? AND state IN ?", machineID, []string{MachineCommissioning, MachineDeploying, MachineReleasing}).
		Updates(map[string]any{"agent_token_hash": tokenHash(raw), "updated_at": now()})
	if res.Error != nil {
		return "", fmt.Errorf("store agent token: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		if _, err := takeMachine(s.db.WithContext(ctx), machineID); err != nil {
			return "", err
		}
		return "", E(ErrInvalidTransition, "", "the machine is not in a state whose boot environment reports back")
	}
	return raw, nil
}

// AgentResult is what a boot environment reported.
type AgentResult struct {
	Mode string // commission | deploy | release
	// MAC is the address the agent booted from; it must be the machine's.
	MAC string
	// OK is false when the agent failed; Message says why.
	OK      bool
	Message string
	// Inventory is the commissioning inventory as validated JSON, with the
	// figures the lists show.
	Inventory string
	CPUModel  string
	Cores     int64
	MemoryMiB int64
	// Deployed describes what a deploy wrote (free text for the timeline).
	Deployed string
	// SSHHostKey is the host key the deploy installed (authorized_keys form).
	SSHHostKey string
	// Log is the agent's last log lines, newline-separated, kept on the
	// timeline with the transition.
	Log string
	// Wiped lists the disks a release erased.
	Wiped    []string
	SourceIP string
}

// AgentReport records a successful report: the short form of
// AgentReportResult for commissioning, deploy and release without details.
func (s *Store) AgentReport(ctx context.Context, rawToken, mode, inv, cpuModel string, cores, memoryMiB int64) (Machine, error) {
	return s.AgentReportResult(ctx, rawToken, AgentResult{Mode: mode, OK: true, Inventory: inv, CPUModel: cpuModel, Cores: cores, MemoryMiB: memoryMiB})
}

// AgentReportResult records what a boot environment reported, authenticated
// by its one-time token: success moves commissioning → ready (inventory
// stored), deploying → deployed and releasing → ready; failure moves to
// failed_commissioning, failed_deployment or broken. The token is spent
// either way. An unknown or spent token, or one used for another mode than
// the machine is in, is ErrNotFound.
func (s *Store) AgentReportResult(ctx context.Context, rawToken string, r AgentResult) (Machine, error) {
	var m Machine
	if rawToken == "" {
		return Machine{}, notFound("agent token")
	}
	want, ok := agentStates()[r.Mode]
	if !ok {
		return Machine{}, E(ErrInvalid, "mode", "unknown mode")
	}
	a := Actor{Email: "boot agent", IP: r.SourceIP}
	t := &Target{Type: "machine"}
	var cur Machine
	err := s.db.WithContext(ctx).Where("agent_token_hash = ? AND agent_token_hash <> ''", tokenHash(rawToken)).Take(&cur).Error
	if errIsNotFound(err) || (err == nil && cur.State != want) {
		return Machine{}, notFound("agent token")
	}
	if err != nil {
		return Machine{}, fmt.Errorf("find agent token: %w", err)
	}
	t.ID, t.Name = cur.ID, cur.Name
	err = s.change(ctx, a, "machine.agent_report", t, func(tx *gorm.DB) error {
		if r.MAC != "" {
			mac, err := NormalizeMAC(r.MAC)
			if err != nil {
				return err
			}
			var n int64
			if err := tx.Model(&MachineMAC{}).Where("mac = ? AND machine_id = ?", mac, cur.ID).Count(&n).Error; err != nil {
				return fmt.Errorf("check report mac: %w", err)
			}
			if n == 0 {
				return E(ErrInvalid, "mac", "the report comes from a MAC that is not this machine's")
			}
		}
		msg := strings.TrimSpace(r.Message)
		extra := map[string]any{}
		var to, reason string
		if !r.OK {
			to = map[string]string{MachineCommissioning: MachineFailedCommissioning, MachineDeploying: MachineFailedDeployment, MachineReleasing: MachineBroken}[cur.State]
			if msg == "" {
				msg = "no reason given"
			}
			reason = r.Mode + " failed: " + msg
			extra["last_error"] = clean(reason)
		} else {
			switch cur.State {
			case MachineCommissioning:
				if r.Inventory == "" {
					return E(ErrInvalid, "inventory", "a commissioning report needs the inventory")
				}
				to = MachineReady
				extra["inventory"], extra["cpu_model"], extra["cores"], extra["memory_mib"] = r.Inventory, clean(r.CPUModel), r.Cores, r.MemoryMiB
				reason = fmt.Sprintf("commissioned: %d cores, %s", r.Cores, FormatMiB(r.MemoryMiB))
			case MachineDeploying:
				to = MachineDeployed
				reason = "deployed to " + cur.DeployDisk
				if r.Deployed != "" {
					reason = "deployed: " + r.Deployed
				}
				key, err := normalizeHostKey(r.SSHHostKey)
				if err != nil {
					return err
				}
				extra["ssh_host_key"] = key
				if cur.DeployKVMHost {
					// The deploy stands even when the registration cannot be
					// made; staff read why on the timeline and add the host
					// by hand.
					var h Host
					err := tx.Transaction(func(tx *gorm.DB) error {
						var err error
						h, err = s.registerKVMHost(tx, cur, key)
						if err != nil {
							return err
						}
						return tx.Create(auditEntry(a, "host.create", &Target{Type: "host", ID: h.ID, Name: h.Name}, ResultSuccess, "registered from machine "+cur.Name)).Error
					})
					var se *Error
					switch {
					case err == nil:
						extra["host_id"] = h.ID
						reason += "; registered as KVM host " + h.Name + " (" + h.URI + ")"
					case errors.As(err, &se):
						reason += "; not registered as a KVM host: " + se.Message
						msg = strings.TrimSpace(msg + " " + se.Message)
						extra["last_error"] = clean("not registered as a KVM host: " + se.Message)
					default:
						return err
					}
				}
			case MachineReleasing:
				to = MachineReady
				reason = "released"
				extra["deploy_image_id"], extra["deploy_disk"], extra["deploy_kvm_host"], extra["ssh_host_key"], extra["release_erase"] = "", "", false, "", false
				if cur.ReleaseErase && len(r.Wiped) == 0 {
					return E(ErrInvalid, "wiped", "the release was to erase the disks but the agent reports none erased")
				}
			}
			if _, set := extra["last_error"]; !set {
				extra["last_error"] = ""
			}
		}
		// The guard on the token hash spends it exactly once even when two
		// reports race.
		res := tx.Model(&Machine{}).Where("id = ? AND state = ? AND agent_token_hash = ?", cur.ID, cur.State, cur.AgentTokenHash).
			Updates(merge(extra, map[string]any{"state": to, "state_changed_at": now(), "updated_at": now(), "agent_token_hash": ""}))
		if res.Error != nil {
			return fmt.Errorf("record agent report: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return notFound("agent token")
		}
		detail := clean(msg)
		if r.Log != "" {
			detail = strings.TrimSpace(detail + "\n" + cleanLog(r.Log))
		}
		if err := addEvent(tx, cur.ID, EventTransition, cur.State, to, reason, detail); err != nil {
			return err
		}
		if r.OK && cur.State == MachineReleasing && len(r.Wiped) > 0 {
			wiped := slices.Clone(r.Wiped)
			sort.Strings(wiped)
			if err := addEvent(tx, cur.ID, EventDiskErased, "", "", "disk erased: "+strings.Join(wiped, ", "), ""); err != nil {
				return err
			}
		}
		var err error
		m, err = takeMachine(tx, cur.ID)
		return err
	})
	return m, err
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// MachineBootState is what the boot stack needs to know about a MAC.
type MachineBootState struct {
	Known     bool
	MachineID string
	Name      string
	State     string
	Erase     bool
}

// BootState finds the enlisted machine a MAC belongs to; Known is false for
// an unknown MAC.
func (s *Store) BootState(ctx context.Context, mac string) (MachineBootState, error) {
	b, ok, err := s.MachineBoot(ctx, mac)
	if err != nil || !ok {
		return MachineBootState{}, err
	}
	return MachineBootState{Known: true, MachineID: b.MachineID, Name: b.Name, State: b.State, Erase: b.Erase}, nil
}

// ListDiscovered returns MACs that PXE-booted without being enlisted,
// most recently seen first.
func (s *Store) ListDiscovered(ctx context.Context, p Page) ([]DiscoveredMAC, int, error) {
	q := s.db.WithContext(ctx).Model(&DiscoveredMAC{}).Where("mac NOT IN (SELECT mac FROM machine_macs)")
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count discovered macs: %w", err)
	}
	var out []DiscoveredMAC
	if err := p.apply(q.Order("last_seen DESC, mac")).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list discovered macs: %w", err)
	}
	return out, int(total), nil
}

// EnlistDiscovered turns a discovered MAC into a machine with manual power
// in one step; staff set the power driver afterwards.
func (s *Store) EnlistDiscovered(ctx context.Context, a Actor, mac, name string) (Machine, error) {
	var m Machine
	t := &Target{Type: "machine", Name: name}
	err := s.change(ctx, a, "machine.enlist", t, func(tx *gorm.DB) error {
		norm, err := NormalizeMAC(mac)
		if err != nil {
			return err
		}
		var d DiscoveredMAC
		if err := tx.Where("mac = ?", norm).Take(&d).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("discovered MAC")
			}
			return fmt.Errorf("load discovered mac: %w", err)
		}
		in := MachineInput{Name: name, MACs: []string{norm}, PowerType: PowerManual}
		if err := in.validate(false); err != nil {
			return err
		}
		t.Name = in.Name
		if m, err = s.createMachine(tx, in, "enlisted from discovery by "+actorName(a)); err != nil {
			return err
		}
		t.ID = m.ID
		return nil
	})
	return m, err
}

// ExpireStaleMachines fails machines stuck in a phase longer than its
// timeout: commissioning → failed_commissioning, deploying →
// failed_deployment, releasing → broken. A zero timeout disables that phase.
// It returns how many machines it moved.
func (s *Store) ExpireStaleMachines(ctx context.Context, at time.Time, commissioning, deploying, releasing time.Duration) (int, error) {
	phases := []struct {
		from, to string
		after    time.Duration
	}{
		{MachineCommissioning, MachineFailedCommissioning, commissioning},
		{MachineDeploying, MachineFailedDeployment, deploying},
		{MachineReleasing, MachineBroken, releasing},
	}
	n := 0
	for _, ph := range phases {
		if ph.after <= 0 {
			continue
		}
		var stale []Machine
		if err := s.db.WithContext(ctx).Where("state = ? AND state_changed_at < ?", ph.from, at.UTC().Add(-ph.after)).
			Order("state_changed_at").Find(&stale).Error; err != nil {
			return n, fmt.Errorf("find stale machines: %w", err)
		}
		for _, m := range stale {
			reason := fmt.Sprintf("%s timed out after %s", ph.from, ph.after)
			t := &Target{Type: "machine", ID: m.ID, Name: m.Name}
			err := s.change(ctx, Actor{Email: "lifecycle timeout"}, "machine.timeout", t, func(tx *gorm.DB) error {
				// Re-read: a report may have moved it on, or it may have
				// left the phase and entered it again since the query.
				cur, err := takeMachine(tx, m.ID)
				if err != nil {
					return err
				}
				if cur.State != ph.from || !cur.StateChangedAt.Before(at.UTC().Add(-ph.after)) {
					return E(ErrConflict, "", "moved on")
				}
				return moveMachine(tx, cur, ph.to, reason, map[string]any{"last_error": reason})
			})
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
				continue // moved on meanwhile, e.g. its report just arrived
			}
			if err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
