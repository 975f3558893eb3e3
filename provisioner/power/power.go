// Package power switches machines on and off through their power drivers
// (IPMI BMCs, Wake-on-LAN, libvirt domains standing in for machines in labs,
// or staff acting by hand). Every driver reports its power state; the other
// abilities are separate one-method interfaces found by type assertion, and
// New builds one driver per machine.
package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is a machine's power state as its driver sees it.
type State string

const (
	On      State = "on"
	Off     State = "off"
	Unknown State = "unknown" // the driver cannot tell (Wake-on-LAN, manual)
)

// BootDevice is where a machine boots from next.
type BootDevice string

const (
	PXE  BootDevice = "pxe"
	Disk BootDevice = "disk"
)

// Stater reports the power state; every driver implements it.
type Stater interface {
	PowerState(ctx context.Context) (State, error)
}

// OnOffer switches power on, or off at once (not a graceful shutdown).
type OnOffer interface {
	PowerOn(ctx context.Context) error
	PowerOff(ctx context.Context) error
}

// Cycler switches power off and on again.
type Cycler interface {
	PowerCycle(ctx context.Context) error
}

// SoftOffer asks the operating system to shut down (ACPI power button).
type SoftOffer interface {
	SoftOff(ctx context.Context) error
}

// BootDeviceSetter chooses the device the machine boots from next; with
// persistent it stays so for later boots too.
type BootDeviceSetter interface {
	SetBootDevice(ctx context.Context, dev BootDevice, efi bool, persistent bool) error
}

// SensorReader reads the machine's sensors.
type SensorReader interface {
	Sensors(ctx context.Context) ([]Sensor, error)
}

// Sensor is one reading, as shown on the machine page.
type Sensor struct {
	Name   string
	Type   string // "Temperature", "Fan", "Voltage", …
	Value  float64
	Unit   string // "degrees C", "RPM", … ; empty for discrete sensors
	Status string // "ok", "cr", "nr", "ns" (no reading), …
}

// Config names a machine's power driver and its parameters, as staff
// entered them. Secret is the driver's credential (the BMC password),
// already decrypted by the caller; it never appears in errors or logs.
type Config struct {
	Type   string // "ipmi", "wol", "virsh" or "manual"
	Params map[string]string
	Secret string
}

// ErrInvalid marks a configuration that can never work as given.
var ErrInvalid = errors.New("invalid power configuration")

// ErrAuth marks a BMC that refused the credentials.
var ErrAuth = errors.New("the BMC refused the credentials")

// ErrUnreachable marks a BMC that did not answer in time.
var ErrUnreachable = errors.New("no answer from the BMC")

// ErrManual is returned by the manual driver's actions: staff must act by
// hand. Test for it with errors.As; Action says what to do.
type ErrManual struct {
	Action string // "power on" or "power off"
}

func (e *ErrManual) Error() string {
	return fmt.Sprintf("this machine is powered by hand: %s it at the rack, then confirm its power state", e.Action)
}

// typeList names the driver types New accepts.
const typeList = "ipmi, wol, virsh, manual"

// New builds the driver for one machine, validating cfg. The driver holds
// its own connection (an IPMI session, a libvirt connection) and may be
// closed with io.Closer when the caller is done with it.
func New(cfg Config, log *slog.Logger) (Stater, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := params{typ: cfg.Type, m: cfg.Params, used: map[string]bool{}}
	var (
		d   Stater
		err error
	)
	switch cfg.Type {
	case "ipmi":
		d, err = newIPMI(&p, cfg.Secret, log)
	case "wol":
		d, err = newWOL(&p)
	case "virsh":
		d, err = newVirsh(&p, log)
	case "manual":
		d, err = newManual(&p)
	case "":
		return nil, fmt.Errorf("%w: type is empty; use one of %s", ErrInvalid, typeList)
	default:
		return nil, fmt.Errorf("%w: type %q is unknown; use one of %s", ErrInvalid, cfg.Type, typeList)
	}
	if err != nil {
		return nil, err
	}
	if err := p.unused(); err != nil {
		return nil, err
	}
	return d, nil
}

// params reads a driver's parameters and remembers which it read, so that
// New can refuse a misspelt one instead of silently ignoring it.
type params struct {
	typ  string
	m    map[string]string
	used map[string]bool
}

func (p *params) invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s %s", ErrInvalid, p.typ, field, fmt.Sprintf(format, args...))
}

func (p *params) str(field, def string) string {
	p.used[field] = true
	if v := strings.TrimSpace(p.m[field]); v != "" {
		return v
	}
	return def
}

func (p *params) required(field string) (string, error) {
	v := p.str(field, "")
	if v == "" {
		return "", p.invalid(field, "is required")
	}
	return v, nil
}

func (p *params) port(field string, def int) (int, error) {
	v := p.str(field, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, p.invalid(field, "%q is not a port number (1-65535)", v)
	}
	return n, nil
}

// duration accepts a Go duration ("5s", "1500ms") or whole seconds ("5").
func (p *params) duration(field string, def time.Duration) (time.Duration, error) {
	v := p.str(field, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, p.invalid(field, "%q is not a duration (e.g. 5s)", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 || d > 5*time.Minute {
		return 0, p.invalid(field, "%s is out of range (0-5m)", v)
	}
	return d, nil
}

func (p *params) unused() error {
	var extra []string
	for k := range p.m {
		if !p.used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	known := make([]string, 0, len(p.used))
	for k := range p.used {
		known = append(known, k)
	}
	slices.Sort(known)
	return fmt.Errorf("%w: %s: unknown parameter %s (known: %s)", ErrInvalid, p.typ,
		strings.Join(extra, ", "), strings.Join(known, ", "))
}
