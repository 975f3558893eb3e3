package power

import "context"

// Manual is a machine that staff power by hand. It knows the power state
// only when staff confirmed it.
type Manual struct {
	confirmed State
}

func newManual(p *params) (*Manual, error) {
	switch s := State(p.str("confirmed_state", string(Unknown))); s {
	case On, Off, Unknown:
		return &Manual{confirmed: s}, nil
	default:
		return nil, p.invalid("confirmed_state", "%q is not on, off or unknown", s)
	}
}

// PowerState returns the state staff confirmed, or Unknown.
func (m *Manual) PowerState(context.Context) (State, error) { return m.confirmed, nil }

// PowerOn asks staff to switch the machine on.
func (m *Manual) PowerOn(context.Context) error { return &ErrManual{Action: "power on"} }

// PowerOff asks staff to switch the machine off.
func (m *Manual) PowerOff(context.Context) error { return &ErrManual{Action: "power off"} }
