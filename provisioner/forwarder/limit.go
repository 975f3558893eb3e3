package forwarder

import (
	"net"
	"net/netip"
	"sync"
)

// limitListener accepts at most n connections at a time (Accept waits until
// one of the open ones is closed) and at most perSource from one client
// address: a further one from that address is closed as soon as it is
// accepted, so one client cannot take every slot.
func limitListener(ln net.Listener, n, perSource int) net.Listener {
	return &limited{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}),
		perSource: perSource, open: map[netip.Addr]int{}}
}

type limited struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	perSource int
	mu        sync.Mutex
	open      map[netip.Addr]int
}

func (l *limited) Accept() (net.Conn, error) {
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		src := sourceOf(c)
		if !l.take(src) {
			_ = c.Close()
			<-l.sem
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.give(src); <-l.sem }}, nil
	}
}

func (l *limited) take(src netip.Addr) bool {
	if l.perSource <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src] >= l.perSource {
		return false
	}
	l.open[src]++
	return true
}

func (l *limited) give(src netip.Addr) {
	if l.perSource <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}

// sourceOf is the client address of c; the zero address when it has none.
func sourceOf(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
