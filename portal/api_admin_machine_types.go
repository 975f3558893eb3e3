package portal

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// JSON shapes of bare-metal machines, for staff. The BMC password goes in
// sealed and never comes back out: answers only say whether one is set.

type machinePowerJSON struct {
	Type        string            `json:"type"`
	Params      map[string]string `json:"params"`
	HasPassword bool              `json:"has_password"`
	State       string            `json:"state"`
}

type machineJSON struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	State          string           `json:"state"`
	StateChangedAt time.Time        `json:"state_changed_at"`
	LastError      string           `json:"last_error"`
	MACs           []string         `json:"macs"`
	Power          machinePowerJSON `json:"power"`
	CPUModel       string           `json:"cpu_model"`
	Cores          int64            `json:"cores"`
	MemoryMiB      int64            `json:"memory_mib"`
	Actions        []string         `json:"actions"`
	CreatedAt      time.Time        `json:"created_at"`
}

type machineEventJSON struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Message string    `json:"message"`
	// Log is the boot agent's message and last log lines, for the
	// transition its report made; empty otherwise.
	Log string `json:"log"`
}

type machineDetailJSON struct {
	machineJSON
	DeployImageID string             `json:"deploy_image_id"`
	DeployDisk    string             `json:"deploy_disk"`
	DeployKVMHost bool               `json:"deploy_kvm_host"`
	SSHHostKey    string             `json:"ssh_host_key"`
	HostID        string             `json:"host_id"`
	Inventory     json.RawMessage    `json:"inventory"`
	Sensors       []bmcSensorJSON    `json:"sensors"`
	SensorsReadAt *time.Time         `json:"sensors_read_at"`
	Events        []machineEventJSON `json:"events"`
}

// bmcSensorJSON is one BMC sensor reading from the latest poll.
type bmcSensorJSON struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Status string  `json:"status"`
}

type discoveredJSON struct {
	MAC         string    `json:"mac"`
	SubnetID    string    `json:"subnet_id"`
	VendorClass string    `json:"vendor_class"`
	Arch        int       `json:"arch"`
	UserClass   string    `json:"user_class"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
}

// machineActions are what staff may ask for in a machine's current state:
// the lifecycle transitions allowed from it, then the power commands.
func machineActions(state string) []string {
	return append(store.MachineActionsFrom(state), store.MachinePowerActions()...)
}

func toMachineJSON(m store.Machine, macs []string) machineJSON {
	if macs == nil {
		macs = []string{}
	}
	return machineJSON{ID: m.ID, Name: m.Name, State: m.State, StateChangedAt: utc(m.StateChangedAt), LastError: m.LastError,
		MACs: macs, Power: machinePowerJSON{Type: m.PowerType, Params: m.Params(), HasPassword: m.PowerSecret != "", State: m.PowerState},
		CPUModel: m.CPUModel, Cores: m.Cores, MemoryMiB: m.MemoryMiB, Actions: machineActions(m.State), CreatedAt: utc(m.CreatedAt)}
}

func toMachineDetailJSON(d store.MachineDetail) machineDetailJSON {
	macs := make([]string, len(d.MACs))
	for i, m := range d.MACs {
		macs[i] = m.MAC
	}
	out := machineDetailJSON{machineJSON: toMachineJSON(d.Machine, macs), DeployImageID: d.DeployImageID, DeployDisk: d.DeployDisk,
		DeployKVMHost: d.DeployKVMHost, SSHHostKey: d.SSHHostKey, HostID: d.HostID,
		Inventory: json.RawMessage("null"), Events: make([]machineEventJSON, len(d.Events))}
	if d.Inventory != "" && json.Valid([]byte(d.Inventory)) {
		out.Inventory = json.RawMessage(d.Inventory)
	}
	out.Sensors, out.SensorsReadAt = []bmcSensorJSON{}, utcPtr(d.SensorsReadAt)
	for _, r := range d.SensorReadings() {
		out.Sensors = append(out.Sensors, bmcSensorJSON{Name: r.Name, Type: r.Type, Value: r.Value, Unit: r.Unit, Status: r.Status})
	}
	for i, ev := range d.Events {
		out.Events[i] = machineEventJSON{At: utc(ev.At), Kind: ev.Kind, From: ev.FromState, To: ev.ToState, Message: ev.Message}
		if ev.Kind == store.EventTransition {
			out.Events[i].Log = ev.Detail
		}
	}
	return out
}

func toDiscoveredJSON(d store.DiscoveredMAC) discoveredJSON {
	return discoveredJSON{MAC: d.MAC, SubnetID: d.SubnetID, VendorClass: d.VendorClass, Arch: d.Arch, UserClass: d.UserClass,
		FirstSeen: utc(d.FirstSeen), LastSeen: utc(d.LastSeen)}
}

// machineRequest enlists a machine. Power is {type, password, …driver
// parameters}, flat, as staff read it off the BMC's label.
type machineRequest struct {
	Name  string         `json:"name"`
	MACs  []string       `json:"macs"`
	Power map[string]any `json:"power"`
}

// machinePatch changes some of a machine's settings; absent fields stay.
// A power object replaces the type and parameters; without a password the
// stored one is kept.
type machinePatch struct {
	Name  *string        `json:"name"`
	MACs  []string       `json:"macs"`
	Power map[string]any `json:"power"`
}

type machineActionRequest struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
	Image  string `json:"image"`
	Disk   string `json:"disk"`
	// KVMHost asks a deploy to register the machine as a KVM host.
	KVMHost bool `json:"kvm_host"`
	// Erase asks a release to quick-wipe the machine's disks.
	Erase bool `json:"erase"`
}

type enlistDiscoveredRequest struct {
	Name string `json:"name"`
}

// machinePower splits a power object into type, parameters and password;
// parameter values may be JSON strings, numbers or booleans.
func machinePower(p map[string]any) (typ string, params map[string]string, password string, err error) {
	params = map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(p)) {
		v := p[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(x)
		case nil:
			continue
		default:
			return "", nil, "", &httpError{status: 400, code: "bad_request", field: "power." + k, message: "power." + k + " must be a string or a number"}
		}
		switch strings.ToLower(k) {
		case "type":
			typ = s
		case "password":
			password = s
		default:
			params[k] = s
		}
	}
	return typ, params, password, nil
}

// seal encrypts a BMC password for the store; "" stays "" (keep or none).
func (s *Server) seal(password string) (string, error) {
	if password == "" {
		return "", nil
	}
	if len(password) > 1024 {
		return "", store.E(store.ErrInvalid, "power.password", "the password is too long")
	}
	return s.secrets.Seal(password)
}
