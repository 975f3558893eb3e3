package connlimit

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeListener hands out conns, then reports itself closed.
type fakeListener struct {
	net.Listener
	conns []net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	if len(l.conns) == 0 {
		return nil, net.ErrClosed
	}
	c := l.conns[0]
	l.conns = l.conns[1:]
	return c, nil
}

// fakeConn is a connection from remote, which is "ip:port" or a unix
// socket path.
type fakeConn struct {
	net.Conn
	remote string
}

func (c *fakeConn) RemoteAddr() net.Addr {
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.UnixAddr{Name: c.remote, Net: "unix"}
}

func (c *fakeConn) Close() error { return nil }

func TestPerAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		remotes []string
		refused []string
	}{
		{
			name:    "IPv4",
			max:     2,
			remotes: []string{"192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3", "192.0.2.2:1"},
			refused: []string{"192.0.2.1:3"},
		},
		{
			name:    "IPv6",
			max:     2,
			remotes: []string{"[2001:db8::1]:1", "[2001:db8::1]:2", "[2001:db8::1]:3", "[2001:db8::2]:1"},
			refused: []string{"[2001:db8::1]:3"},
		},
		{
			name:    "IPv4-mapped counts as IPv4",
			max:     1,
			remotes: []string{"192.0.2.1:1", "[::ffff:192.0.2.1]:2"},
			refused: []string{"[::ffff:192.0.2.1]:2"},
		},
		{
			name:    "unix sockets are not counted",
			max:     1,
			remotes: []string{"/run/a.sock", "/run/a.sock", "/run/a.sock"},
		},
		{
			name:    "no cap",
			max:     0,
			remotes: []string{"192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeListener{}
			for _, r := range tc.remotes {
				fake.conns = append(fake.conns, &fakeConn{remote: r})
			}
			var refused []string
			ln := PerAddress(fake, tc.max, func(c net.Conn) { refused = append(refused, c.(*fakeConn).remote) })
			var accepted int
			for {
				if _, err := ln.Accept(); err != nil {
					break
				}
				accepted++
			}
			if diff := cmp.Diff(tc.refused, refused); diff != "" {
				t.Errorf("refused (-want +got):\n%s", diff)
			}
			if want := len(tc.remotes) - len(tc.refused); accepted != want {
				t.Errorf("accepted %d connections, want %d", accepted, want)
			}
		})
	}
}

// TestAddressCapCountsEachConnectionOnce closes connections twice, as a
// server shutting down may: each frees its slot once.
func TestAddressCapCountsEachConnectionOnce(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var refused []string
	ln := PerAddress(raw, 2, func(c net.Conn) {
		refused = append(refused, c.RemoteAddr().(*net.TCPAddr).IP.String())
		_ = c.Close()
	})
	dial := func(src string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	accept := func(src string) net.Conn {
		t.Helper()
		dial(src)
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	closeTwice := func(s net.Conn) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Errorf("first Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
	}

	closeTwice(accept("127.0.0.1"))
	closeTwice(accept("127.0.0.1"))
	ln.mu.Lock()
	n := len(ln.open)
	ln.mu.Unlock()
	if n != 0 {
		t.Errorf("%d addresses still counted after every connection closed", n)
	}

	// With one open and one closed twice, one more gets in and the next
	// is refused: the double close freed one slot, not two.
	accept("127.0.0.1")
	closeTwice(accept("127.0.0.1"))
	accept("127.0.0.1")
	dial("127.0.0.1")
	accept("127.0.0.2") // Accept refuses the one before on its way
	if diff := cmp.Diff([]string{"127.0.0.1"}, refused); diff != "" {
		t.Errorf("refused (-want +got):\n%s", diff)
	}
}
