package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	ipmitypes "github.com/bougou/go-ipmi/pkg/types"
)

// IPMI drives a BMC over the network, IPMI 1.5 ("lan") or 2.0 ("lanplus").
// It keeps one session open between calls, reopens it after an error, and
// sends one command at a time: many BMCs mishandle concurrent sessions.
type IPMI struct {
	addr    string // host:port, for messages
	host    string
	port    int
	user    string
	secret  string
	iface   client.Interface
	suite   ipmitypes.CipherSuiteID
	timeout time.Duration
	log     *slog.Logger

	mu sync.Mutex     // one command at a time per BMC
	c  *client.Client // the open session, or nil
}

const (
	defaultIPMIPort    = 623
	defaultIPMITimeout = 5 * time.Second
	// defaultCipherSuite is the one ipmitool uses. Pinning a suite also
	// skips go-ipmi's suite discovery, which costs ~4 s against ipmi_sim.
	defaultCipherSuite = 3
	// attemptTimeout bounds one UDP exchange; go-ipmi resends after it.
	attemptTimeout = time.Second
)

// cipherSuites are the RMCP+ suites we accept: 0–3 (SHA-1, what ipmi_sim
// and older BMCs offer), 6 (MD5) and 15–17 (SHA-256, the default of
// current BMCs).
var cipherSuites = map[int]bool{0: true, 1: true, 2: true, 3: true, 6: true, 15: true, 16: true, 17: true}

func newIPMI(p *params, secret string, log *slog.Logger) (*IPMI, error) {
	if _, ok := p.m["password"]; ok {
		return nil, p.invalid("password", "must not be a parameter: pass it as the secret, which is stored encrypted")
	}
	host, err := p.required("address")
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(host); err == nil || strings.ContainsAny(host, "/ ") {
		return nil, p.invalid("address", "%q must be a host name or IP address alone (the port is its own parameter)", host)
	}
	port, err := p.port("port", defaultIPMIPort)
	if err != nil {
		return nil, err
	}
	user, err := p.required("username")
	if err != nil {
		return nil, err
	}
	if len(user) > 16 {
		return nil, p.invalid("username", "is longer than the 16 characters IPMI allows")
	}
	if secret == "" {
		return nil, p.invalid("password", "is required (the secret is empty)")
	}
	d := &IPMI{
		addr: net.JoinHostPort(host, strconv.Itoa(port)), host: host, port: port,
		user: user, secret: secret, log: log.With("bmc", net.JoinHostPort(host, strconv.Itoa(port))),
	}
	switch iface := p.str("interface", "lanplus"); iface {
	case "lanplus":
		d.iface = client.InterfaceLanplus
	case "lan":
		d.iface = client.InterfaceLan
	default:
		return nil, p.invalid("interface", "%q is unknown; use lan (IPMI 1.5) or lanplus (IPMI 2.0)", iface)
	}
	if max := map[client.Interface]int{client.InterfaceLan: 16, client.InterfaceLanplus: 20}[d.iface]; len(secret) > max {
		return nil, p.invalid("password", "is longer than the %d characters interface %s allows", max, d.iface)
	}
	suite := defaultCipherSuite
	if v := p.str("cipher_suite", ""); v != "" {
		if d.iface == client.InterfaceLan {
			return nil, p.invalid("cipher_suite", "applies to interface lanplus only")
		}
		n, err := strconv.Atoi(v)
		if err != nil || !cipherSuites[n] {
			return nil, p.invalid("cipher_suite", "%q is not supported; use 0-3, 6, 15, 16 or 17", v)
		}
		suite = n
	}
	d.suite = ipmitypes.CipherSuiteID(suite)
	if d.timeout, err = p.duration("timeout", defaultIPMITimeout); err != nil {
		return nil, err
	}
	return d, nil
}

// PowerState reads the chassis power state.
func (d *IPMI) PowerState(ctx context.Context) (State, error) {
	var st State
	err := d.do(ctx, "get chassis status", func(ctx context.Context, c *client.Client) error {
		r, err := c.GetChassisStatus(ctx)
		if err != nil {
			return err
		}
		st = Off
		if r.PowerIsOn {
			st = On
		}
		return nil
	})
	return st, err
}

// PowerOn switches power on; a machine already on is left alone by the BMC.
func (d *IPMI) PowerOn(ctx context.Context) error {
	return d.control(ctx, "power on", chassis.ChassisControlPowerUp)
}

// PowerOff cuts power at once, without asking the operating system.
func (d *IPMI) PowerOff(ctx context.Context) error {
	return d.control(ctx, "power off", chassis.ChassisControlPowerDown)
}

// SoftOff asks the operating system to shut down (ACPI power button).
func (d *IPMI) SoftOff(ctx context.Context) error {
	return d.control(ctx, "soft off", chassis.ChassisControlSoftShutdown)
}

// PowerCycle switches power off and on; a machine that is off is switched
// on, since many BMCs refuse a cycle in that state.
func (d *IPMI) PowerCycle(ctx context.Context) error {
	return d.do(ctx, "power cycle", func(ctx context.Context, c *client.Client) error {
		r, err := c.GetChassisStatus(ctx)
		if err != nil {
			return err
		}
		ctl := chassis.ChassisControlPowerCycle
		if !r.PowerIsOn {
			ctl = chassis.ChassisControlPowerUp
		}
		_, err = c.ChassisControl(ctx, ctl)
		return err
	})
}

func (d *IPMI) control(ctx context.Context, op string, ctl chassis.ChassisControl) error {
	return d.do(ctx, op, func(ctx context.Context, c *client.Client) error {
		_, err := c.ChassisControl(ctx, ctl)
		return err
	})
}

// SetBootDevice sets the boot device for the next boot (or every boot, if
// persistent), in legacy BIOS or EFI mode.
func (d *IPMI) SetBootDevice(ctx context.Context, dev BootDevice, efi bool, persistent bool) error {
	var sel ipmitypes.BootDeviceSelector
	switch dev {
	case PXE:
		sel = ipmitypes.BootDeviceSelectorForcePXE
	case Disk:
		sel = ipmitypes.BootDeviceSelectorForceHardDrive
	default:
		return fmt.Errorf("%w: boot device %q is unknown; use pxe or disk", ErrInvalid, dev)
	}
	mode := ipmitypes.BIOSBootTypeLegacy
	if efi {
		mode = ipmitypes.BIOSBootTypeEFI
	}
	return d.do(ctx, "set boot device "+string(dev), func(ctx context.Context, c *client.Client) error {
		return c.SetBootDevice(ctx, sel, mode, persistent)
	})
}

// Sensors reads every sensor in the BMC's SDR repository. A BMC without
// sensor records yields an empty list.
func (d *IPMI) Sensors(ctx context.Context) ([]Sensor, error) {
	out := []Sensor{}
	err := d.do(ctx, "read sensors", func(ctx context.Context, c *client.Client) error {
		ss, err := c.GetSensors(ctx)
		if completionCode(err) == ipmitypes.CodeRequestedDataNotPresent {
			// An empty repository answers "record not found" (0xCB).
			return nil
		}
		if err != nil {
			return err
		}
		for _, s := range ss {
			v := Sensor{Name: s.Name, Type: s.SensorType.String(), Value: s.Value, Status: s.Status()}
			if s.IsThreshold() {
				v.Unit = s.SensorUnit.String()
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Close ends the session, if one is open.
func (d *IPMI) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	err := d.c.Close(ctx)
	d.c = nil
	return err
}

// do runs one command under the BMC's lock and the call's timeout, on the
// open session or a new one.
func (d *IPMI) do(ctx context.Context, op string, f func(context.Context, *client.Client) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	if d.c != nil {
		// A session kept from an earlier call may have expired on the
		// BMC (idle timeout, BMC restart), which then stays silent: give
		// it half the time and keep the rest for a fresh session.
		actx, acancel := context.WithTimeout(ctx, d.timeout/2)
		err := f(actx, d.c)
		acancel()
		if err == nil {
			return nil
		}
		if completionCode(err) != 0 {
			// The session works; the BMC refused this command.
			return fmt.Errorf("ipmi %s at %s: %w", op, d.addr, err)
		}
		d.log.Debug("ipmi session failed, reopening", "op", op, "err", err)
		d.drop()
		if ctx.Err() != nil {
			return d.classify(ctx, op, err)
		}
	}
	c, err := d.connect(ctx)
	if err != nil {
		return err
	}
	d.c = c
	if err := f(ctx, c); err != nil {
		if completionCode(err) == 0 {
			d.drop()
		}
		return d.classify(ctx, op, err)
	}
	return nil
}

func (d *IPMI) connect(ctx context.Context) (*client.Client, error) {
	c, err := client.NewClient(d.host, d.port, d.user, d.secret)
	if err != nil {
		return nil, fmt.Errorf("%w: ipmi: username: %w", ErrInvalid, err)
	}
	attempt := min(attemptTimeout, d.timeout)
	c.WithInterface(d.iface).
		WithTimeout(attempt).
		// Resend until the call's deadline; ctx cuts it short.
		WithRetry(int(d.timeout / attempt)).
		WithMaxPrivilegeLevel(ipmitypes.PrivilegeLevelAdministrator)
	if d.iface == client.InterfaceLanplus {
		c.WithCipherSuiteID(d.suite)
	}
	if err := c.Connect(ctx); err != nil {
		// Free what a half-open session holds; the BMC may not answer.
		cctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = c.Close(cctx)
		cancel()
		return nil, d.classify(ctx, "open session", err)
	}
	return c, nil
}

// drop forgets the session after an error, closing it without waiting for
// a BMC that may be gone.
func (d *IPMI) drop() {
	if d.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = d.c.Close(ctx)
	cancel()
	d.c = nil
}

// classify turns go-ipmi's errors into the ones staff can act on.
func (d *IPMI) classify(ctx context.Context, op string, err error) error {
	msg := err.Error()
	timedOut := ctx.Err() != nil || isNetError(err) || strings.Contains(msg, "deadline")
	switch {
	case d.iface == client.InterfaceLanplus && d.suite == 0 && isAuthError(err):
		// go-ipmi v0.9.1 cannot complete suite 0 (no authentication) with
		// ipmi_sim nor with its own BMC; do not blame the password.
		return fmt.Errorf("%w: the BMC at %s did not complete a cipher suite 0 session; try cipher_suite 3 (or 17)",
			ErrUnreachable, d.addr)
	case isAuthError(err) && !timedOut,
		// An IPMI 1.5 BMC drops an Activate Session signed with the wrong
		// password (ipmi_sim stays silent, others answer "invalid session
		// ID"); it answered the steps before, so it is up.
		strings.Contains(msg, "ActivateSession failed") && (timedOut || completionCode(err) == 0x85),
		// Get Session Challenge: 0x81 invalid user name, 0x82 null user
		// disabled.
		strings.Contains(msg, "GetSessionChallenge") && (completionCode(err) == 0x81 || completionCode(err) == 0x82):
		d.log.Debug("ipmi authentication failed", "op", op, "err", err)
		return fmt.Errorf("%w (user %s)", ErrAuth, d.user)
	case strings.Contains(msg, "RMCP+ Open Session failed") && !timedOut:
		return fmt.Errorf("%w: the BMC at %s does not accept cipher suite %d; choose one it offers (ipmitool channel getciphers ipmi)",
			ErrInvalid, d.addr, d.suite)
	case d.iface == client.InterfaceLanplus && strings.Contains(msg, "SetSessionPrivilegeLevel") && timedOut:
		// go-ipmi v0.9.1 marks every in-session packet authenticated and
		// encrypted (pkg/client/session_v20.go), whatever the suite, so a
		// BMC drops them under suites without confidentiality (1, 2, 6,
		// 15, 16): the session opens, then nothing in it is answered.
		return fmt.Errorf("%w: the BMC at %s opened a session with cipher suite %d but answers nothing in it; try cipher_suite 3 (or 17)",
			ErrUnreachable, d.addr, d.suite)
	case timedOut:
		d.log.Debug("ipmi bmc unreachable", "op", op, "err", err)
		return fmt.Errorf("%w at %s within %s", ErrUnreachable, d.addr, d.timeout)
	}
	return fmt.Errorf("ipmi %s at %s: %w", op, d.addr, err)
}

func completionCode(err error) ipmitypes.CompletionCode {
	var re *ipmitypes.ResponseError
	if errors.As(err, &re) {
		return re.CompletionCode()
	}
	return 0
}

func isAuthError(err error) bool {
	if errors.Is(err, client.ErrRAKPAuthentication) {
		return true
	}
	// go-ipmi reports RAKP status codes and v1.5 activation failures as
	// text only.
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unauthorized name", "invalid integrity check", "unauthorized role",
		"invalid name", "rakp", "password", "authcode", "auth code", "invalid user"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
