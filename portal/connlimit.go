package portal

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// tooManyConns is the answer to a connection over its address's cap, sent
// before the request is read, in the API's error shape.
var tooManyConns = func() []byte {
	body := `{"error":{"code":"rate_limited","message":"too many connections from your address at once; close some and try again"}}`
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// addressCap is a listener that lets each client address (IPv4 or IPv6)
// hold at most max connections at once; a connection over the cap is
// answered 429 and closed.
type addressCap struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[netip.Addr]int
}

func capPerAddress(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return &addressCap{Listener: ln, max: max, open: map[netip.Addr]int{}}
}

func (l *addressCap) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr != nil {
			return c, nil // not an IP connection: nothing to count
		}
		ip := ap.Addr().Unmap()
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			go refuseConn(c)
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &cappedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *addressCap) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// refuseConn answers 429 without reading the request, within a second.
func refuseConn(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(tooManyConns)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.Close()
}

// cappedConn gives its slot back once, however often it is closed.
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
