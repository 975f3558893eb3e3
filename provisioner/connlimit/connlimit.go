// Package connlimit caps the connections each client address may hold open
// at once on a listener, so that one client cannot take every slot.
package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// Listener lets each client address hold at most a fixed number of
// accepted connections open at once. IPv4 and IPv6 addresses are counted
// alike, an IPv4-mapped IPv6 address as its IPv4 address; connections
// without an IP address (unix sockets) are not counted.
type Listener struct {
	net.Listener
	max    int
	refuse func(net.Conn)

	mu   sync.Mutex
	open map[netip.Addr]int
}

// PerAddress caps the connections each client address holds open on ln at
// max; max <= 0 is no cap. A connection over the cap is not returned by
// Accept but handed to refuse, which must close it (it may first tell the
// client why); a nil refuse closes it at once.
func PerAddress(ln net.Listener, max int, refuse func(net.Conn)) *Listener {
	if refuse == nil {
		refuse = func(c net.Conn) { _ = c.Close() }
	}
	return &Listener{Listener: ln, max: max, refuse: refuse, open: map[netip.Addr]int{}}
}

// Accept returns the next connection whose address is under the cap,
// refusing the others meanwhile. Its slot is freed by its first Close.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 {
			return c, nil
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil // not an IP connection: nothing to count
		}
		addr := ap.Addr().Unmap()
		if !l.take(addr) {
			l.refuse(c)
			continue
		}
		return &conn{Conn: c, release: func() { l.give(addr) }}, nil
	}
}

func (l *Listener) take(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] >= l.max {
		return false
	}
	l.open[addr]++
	return true
}

func (l *Listener) give(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
}

// conn gives its slot back once, however often it is closed: servers
// shutting down may close a connection more than once.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its slot; closing it again is no
// error.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
