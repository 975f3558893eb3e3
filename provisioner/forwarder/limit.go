package forwarder

import (
	"net"
	"sync"

	"github.com/fibrixcloud/fibrix/provisioner/connlimit"
)

// limitListener accepts at most n connections at a time (Accept waits until
// one of the open ones is closed) and at most perSource from one client
// address: a further one from that address is closed as soon as it is
// accepted, so one client cannot take every slot.
func limitListener(ln net.Listener, n, perSource int) net.Listener {
	return &limited{Listener: connlimit.PerAddress(ln, perSource, nil), sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limited struct {
	net.Listener // capped per source
	sem          chan struct{}
	done         chan struct{}
	closeOnce    sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
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
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
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
