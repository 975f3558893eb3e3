package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
)

// Virsh powers a libvirt domain that stands in for a machine in labs.
type Virsh struct {
	uri     string
	domain  string
	timeout time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	conn *hypervisor.Conn // kept between calls; nil after an error
}

const defaultVirshTimeout = 30 * time.Second

func newVirsh(p *params, log *slog.Logger) (*Virsh, error) {
	uri, err := p.required("uri")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, p.invalid("uri", "%q is not a URI: %v", uri, err)
	}
	switch u.Scheme {
	case "test", "qemu":
		if u.Host != "" {
			return nil, p.invalid("uri", "%q names a remote host; this driver reaches only the local libvirtd (qemu:///system)", uri)
		}
	default:
		return nil, p.invalid("uri", "%q: scheme %q is not supported; use qemu:///system (or test:///default)", uri, u.Scheme)
	}
	dom, err := p.required("domain")
	if err != nil {
		return nil, err
	}
	timeout, err := p.duration("timeout", defaultVirshTimeout)
	if err != nil {
		return nil, err
	}
	return &Virsh{uri: uri, domain: dom, timeout: timeout, log: log.With("domain", dom)}, nil
}

// PowerState maps the domain's state to on or off.
func (v *Virsh) PowerState(ctx context.Context) (State, error) {
	var st State
	err := v.do(ctx, func(ctx context.Context, c *hypervisor.Conn) error {
		s, err := c.State(ctx, v.domain)
		if err != nil {
			return err
		}
		switch s {
		case hypervisor.Absent:
			return fmt.Errorf("domain %s: %w", v.domain, hypervisor.ErrNotFound)
		case hypervisor.ShutOff, hypervisor.Crashed:
			st = Off
		case hypervisor.Unknown:
			st = Unknown
		default: // running, blocked, paused, shutting down, suspended
			st = On
		}
		return nil
	})
	return st, err
}

// PowerOn starts the domain.
func (v *Virsh) PowerOn(ctx context.Context) error {
	return v.do(ctx, func(ctx context.Context, c *hypervisor.Conn) error { return c.Start(ctx, v.domain) })
}

// PowerOff destroys (pulls the plug of) the domain.
func (v *Virsh) PowerOff(ctx context.Context) error {
	return v.do(ctx, func(ctx context.Context, c *hypervisor.Conn) error { return c.Destroy(ctx, v.domain) })
}

// SoftOff asks the guest to shut down (ACPI).
func (v *Virsh) SoftOff(ctx context.Context) error {
	return v.do(ctx, func(ctx context.Context, c *hypervisor.Conn) error { return c.Shutdown(ctx, v.domain) })
}

// PowerCycle pulls the plug and starts the domain again.
func (v *Virsh) PowerCycle(ctx context.Context) error {
	return v.do(ctx, func(ctx context.Context, c *hypervisor.Conn) error {
		if err := c.Destroy(ctx, v.domain); err != nil {
			return err
		}
		return c.Start(ctx, v.domain)
	})
}

// Close ends the libvirt connection.
func (v *Virsh) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn == nil {
		return nil
	}
	err := v.conn.Close()
	v.conn = nil
	return err
}

func (v *Virsh) do(ctx context.Context, f func(context.Context, *hypervisor.Conn) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	if v.conn == nil {
		c, err := hypervisor.Dial(ctx, hypervisor.Config{URI: v.uri, Timeout: v.timeout})
		if err != nil {
			return fmt.Errorf("virsh %s: %w", v.domain, err)
		}
		v.conn = c
	}
	err := f(ctx, v.conn)
	if err != nil && !errors.Is(err, hypervisor.ErrNotFound) && !errors.Is(err, hypervisor.ErrInvalid) {
		// The connection may be broken; dial afresh next time.
		v.log.Debug("libvirt call failed, reconnecting next time", "err", err)
		_ = v.conn.Close()
		v.conn = nil
	}
	if err != nil {
		return fmt.Errorf("virsh %s: %w", v.domain, err)
	}
	return nil
}
