package power

import (
	"bytes"
	"context"
	"fmt"
	"net"
)

// WOL wakes a machine with a Wake-on-LAN magic packet. It cannot switch a
// machine off nor see its state.
type WOL struct {
	mac       net.HardwareAddr
	broadcast string // host:port the packet is sent to
}

const defaultBroadcast = "255.255.255.255:9"

func newWOL(p *params) (*WOL, error) {
	m, err := p.required("mac")
	if err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(m)
	if err != nil || len(mac) != 6 {
		return nil, p.invalid("mac", "%q is not a 6-byte MAC address (e.g. 52:54:00:12:34:56)", m)
	}
	b := p.str("broadcast", defaultBroadcast)
	host, port, err := net.SplitHostPort(b)
	if err != nil || net.ParseIP(host) == nil || port == "" {
		return nil, p.invalid("broadcast", "%q must be IP:port (e.g. %s)", b, defaultBroadcast)
	}
	return &WOL{mac: mac, broadcast: b}, nil
}

// PowerState is always Unknown: Wake-on-LAN has no way back.
func (w *WOL) PowerState(context.Context) (State, error) { return Unknown, nil }

// PowerOn sends the magic packet.
func (w *WOL) PowerOn(ctx context.Context) error {
	var d net.Dialer
	// SO_BROADCAST is needed to send to 255.255.255.255; Go's UDP sockets
	// set it by default on Linux.
	conn, err := d.DialContext(ctx, "udp4", w.broadcast)
	if err != nil {
		return fmt.Errorf("wake-on-lan %s via %s: %w", w.mac, w.broadcast, err)
	}
	defer conn.Close()
	if _, err := conn.Write(MagicPacket(w.mac)); err != nil {
		return fmt.Errorf("wake-on-lan %s via %s: %w", w.mac, w.broadcast, err)
	}
	return nil
}

// PowerOff is not possible over Wake-on-LAN.
func (w *WOL) PowerOff(context.Context) error {
	return &ErrManual{Action: "power off"}
}

// MagicPacket is six 0xFF bytes followed by the MAC sixteen times.
func MagicPacket(mac net.HardwareAddr) []byte {
	return append(bytes.Repeat([]byte{0xff}, 6), bytes.Repeat(mac, 16)...)
}
