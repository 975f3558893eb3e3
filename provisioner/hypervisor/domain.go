package hypervisor

import (
	"context"
	"fmt"

	"github.com/digitalocean/go-libvirt"
)

// DomainState is what libvirt says a domain is doing.
type DomainState string

// Domain states. Absent means no domain of that name is defined.
const (
	Absent       DomainState = "absent"
	Running      DomainState = "running"
	Blocked      DomainState = "blocked"
	Paused       DomainState = "paused"
	ShuttingDown DomainState = "shutting-down"
	ShutOff      DomainState = "shut-off"
	Crashed      DomainState = "crashed"
	Suspended    DomainState = "suspended" // by guest power management
	Unknown      DomainState = "unknown"
)

// Active reports whether the domain has a running QEMU process.
func (s DomainState) Active() bool {
	switch s {
	case Running, Blocked, Paused, ShuttingDown, Suspended:
		return true
	}
	return false
}

func stateOf(v int32) DomainState {
	switch libvirt.DomainState(v) {
	case libvirt.DomainRunning:
		return Running
	case libvirt.DomainBlocked:
		return Blocked
	case libvirt.DomainPaused:
		return Paused
	case libvirt.DomainShutdown:
		return ShuttingDown
	case libvirt.DomainShutoff:
		return ShutOff
	case libvirt.DomainCrashed:
		return Crashed
	case libvirt.DomainPmsuspended:
		return Suspended
	}
	return Unknown
}

// Define creates the domain, or updates its definition when one with the
// same name and UUID exists (libvirt refuses a different UUID). A running
// domain picks the new definition up at its next start.
func (c *Conn) Define(ctx context.Context, spec DomainSpec) error {
	x, err := DomainXML(spec)
	if err != nil {
		return err
	}
	if _, err := do(ctx, func() (libvirt.Domain, error) { return c.lv.DomainDefineXML(string(x)) }); err != nil {
		return fmt.Errorf("define domain %s: %w", spec.Name, err)
	}
	return nil
}

// lookup finds a domain; ok is false when it does not exist.
func (c *Conn) lookup(ctx context.Context, name string) (dom libvirt.Domain, ok bool, err error) {
	dom, err = do(ctx, func() (libvirt.Domain, error) { return c.lv.DomainLookupByName(name) })
	if isCode(err, libvirt.ErrNoDomain) {
		return dom, false, nil
	}
	if err != nil {
		return dom, false, fmt.Errorf("look up domain %s: %w", name, err)
	}
	return dom, true, nil
}

// State returns the state of the named domain, Absent when it is not defined.
func (c *Conn) State(ctx context.Context, name string) (DomainState, error) {
	dom, ok, err := c.lookup(ctx, name)
	if err != nil || !ok {
		return Absent, err
	}
	return c.state(ctx, dom)
}

func (c *Conn) state(ctx context.Context, dom libvirt.Domain) (DomainState, error) {
	st, err := do(ctx, func() (int32, error) {
		st, _, err := c.lv.DomainGetState(dom, 0)
		return st, err
	})
	if isCode(err, libvirt.ErrNoDomain) {
		return Absent, nil
	}
	if err != nil {
		return Unknown, fmt.Errorf("state of domain %s: %w", dom.Name, err)
	}
	return stateOf(st), nil
}

// Start boots the domain; a running one is left alone and a paused one
// resumed.
func (c *Conn) Start(ctx context.Context, name string) error {
	return c.act(ctx, "start", name, func(dom libvirt.Domain, st DomainState) error {
		switch {
		case st == Paused:
			return c.lv.DomainResume(dom)
		case st.Active():
			return nil
		}
		return c.lv.DomainCreate(dom)
	})
}

// Shutdown asks the guest to power off (ACPI power button) and returns at
// once; poll State to see it end. A domain that is not running is left alone.
func (c *Conn) Shutdown(ctx context.Context, name string) error {
	return c.act(ctx, "shut down", name, func(dom libvirt.Domain, st DomainState) error {
		if !st.Active() {
			return nil
		}
		return c.lv.DomainShutdown(dom)
	})
}

// Destroy powers the domain off at once, like pulling the plug.
func (c *Conn) Destroy(ctx context.Context, name string) error {
	return c.act(ctx, "destroy", name, func(dom libvirt.Domain, st DomainState) error {
		if !st.Active() {
			return nil
		}
		return c.lv.DomainDestroy(dom)
	})
}

// Reboot asks a running guest to reboot (ACPI); a domain that is not
// running is started instead, which ends in the same place.
func (c *Conn) Reboot(ctx context.Context, name string) error {
	return c.act(ctx, "reboot", name, func(dom libvirt.Domain, st DomainState) error {
		if !st.Active() {
			return c.lv.DomainCreate(dom)
		}
		return c.lv.DomainReboot(dom, libvirt.DomainRebootDefault)
	})
}

// Undefine removes the domain's definition (with its managed save image,
// snapshot metadata and NVRAM). A running domain stays running, transient,
// until destroyed. An absent domain is fine.
func (c *Conn) Undefine(ctx context.Context, name string) error {
	dom, ok, err := c.lookup(ctx, name)
	if err != nil || !ok {
		return err
	}
	err = do0(ctx, func() error {
		err := c.lv.DomainUndefineFlags(dom, libvirt.DomainUndefineManagedSave|
			libvirt.DomainUndefineSnapshotsMetadata|libvirt.DomainUndefineNvram)
		if isCode(err, libvirt.ErrNoSupport, libvirt.ErrInvalidArg) {
			// Drivers without these flags (the test driver) have
			// nothing they would remove.
			err = c.lv.DomainUndefine(dom)
		}
		return err
	})
	if err != nil && !isCode(err, libvirt.ErrNoDomain) {
		return fmt.Errorf("undefine domain %s: %w", name, err)
	}
	return nil
}

// act runs one lifecycle step on an existing domain. When f fails, the state is read again, since libvirt
// reports "not running"-style errors when the domain changed state between
// our observation and the call (a guest that powered itself off), and the
// step is then repeated once on the fresh state.
func (c *Conn) act(ctx context.Context, verb, name string, f func(libvirt.Domain, DomainState) error) error {
	dom, ok, err := c.lookup(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s domain %s: %w", verb, name, ErrNotFound)
	}
	for attempt := 0; ; attempt++ {
		st, err := c.state(ctx, dom)
		if err != nil {
			return err
		}
		if st == Absent {
			return fmt.Errorf("%s domain %s: %w", verb, name, ErrNotFound)
		}
		err = do0(ctx, func() error { return f(dom, st) })
		if err == nil {
			return nil
		}
		if attempt == 0 && isCode(err, libvirt.ErrOperationInvalid) {
			continue
		}
		return fmt.Errorf("%s domain %s: %w", verb, name, err)
	}
}

// Domains returns the names of all domains defined on the host, running or
// not: what a reconciler compares with the VMs it expects there.
func (c *Conn) Domains(ctx context.Context) ([]string, error) {
	doms, err := do(ctx, func() ([]libvirt.Domain, error) {
		d, _, err := c.lv.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive|libvirt.ConnectListDomainsInactive)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	names := make([]string, len(doms))
	for i, d := range doms {
		names[i] = d.Name
	}
	return names, nil
}
