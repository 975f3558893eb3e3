package hypervisor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// ErrNotRunning marks a console asked for on a domain that is not running.
var ErrNotRunning = errors.New("domain is not running")

// ErrConsoleBusy marks a domain whose console another session holds.
var ErrConsoleBusy = errors.New("console in use by another session")

// libvirt's RPC framing (remote_protocol.x): a 4-byte length, then a 24-byte
// header of program, version, procedure, type, serial and status.
const (
	rpcProgram        = 0x20008086
	rpcVersion        = 1
	rpcHeaderLen      = 28
	procOpenConsole   = 201 // REMOTE_PROC_DOMAIN_OPEN_CONSOLE
	typeCall          = 0
	typeReply         = 1
	typeStream        = 3
	statusOK          = 0
	statusContinue    = 2
	maxConsoleWrite   = 64 << 10
	consoleOpenWindow = 15 * time.Second
)

// Console is a running domain's serial console: Read returns what the guest
// prints, Write types into it. It holds its own libvirt connection, so that
// a slow reader holds up nobody else. Close ends the stream.
//
// go-libvirt's DomainOpenConsole only receives: it returns the guest's
// output to an io.Writer and has no way to send. The keyboard direction is
// libvirt's own stream framing (a stream packet with the call's serial),
// written on the same socket; the serial is read off the call as it goes
// out. Nothing else is written on this connection while the stream is
// open, so the packets cannot interleave with go-libvirt's.
type Console struct {
	tap    *tapConn
	lv     *libvirt.Libvirt
	out    *io.PipeReader
	done   chan error
	owned  *Conn // closed with the console when OpenConsole dialled it
	once   sync.Once
	closed chan struct{}
}

// OpenConsole dials the host in cfg and opens the console of the named
// domain; Close also ends that connection.
func OpenConsole(ctx context.Context, cfg Config, name string) (*Console, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	con, err := c.OpenConsole(ctx, name)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	con.owned = c
	return con, nil
}

// OpenConsole opens the serial console of the named running domain on a
// connection of its own to the same host.
func (c *Conn) OpenConsole(ctx context.Context, name string) (*Console, error) {
	dom, ok, err := c.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("console of %s: %w", name, ErrNotFound)
	}
	st, err := c.state(ctx, dom)
	if err != nil {
		return nil, err
	}
	if st != Running && st != Blocked {
		return nil, fmt.Errorf("console of %s (%s): %w", name, st, ErrNotRunning)
	}
	tap := &tapConn{ready: make(chan struct{})}
	lv := libvirt.NewWithDialer(dialerFunc(func() (net.Conn, error) {
		nc, err := c.dialer.Dial()
		if err != nil {
			return nil, err
		}
		tap.Conn = nc
		return tap, nil
	}))
	if err := do0(ctx, func() error { return lv.ConnectToURI(c.remote) }); err != nil {
		if tap.Conn != nil {
			_ = tap.Conn.Close()
		}
		return nil, fmt.Errorf("console of %s: connect: %w", name, err)
	}
	pr, pw := io.Pipe()
	con := &Console{tap: tap, lv: lv, out: pr, done: make(chan error, 1), closed: make(chan struct{})}
	go func() {
		err := lv.DomainOpenConsole(dom, nil, pw, 0)
		if err == nil {
			err = io.EOF
		}
		_ = pw.CloseWithError(err)
		con.done <- err
	}()
	wait := time.NewTimer(consoleOpenWindow)
	defer wait.Stop()
	select {
	case <-tap.ready:
		return con, nil
	case err := <-con.done:
		_ = tap.Conn.Close()
		if strings.Contains(err.Error(), "Active console session") {
			return nil, fmt.Errorf("console of %s: %w", name, ErrConsoleBusy)
		}
		return nil, fmt.Errorf("console of %s: %w", name, err)
	case <-ctx.Done():
		_ = tap.Conn.Close()
		return nil, ctx.Err()
	case <-wait.C:
		_ = tap.Conn.Close()
		return nil, fmt.Errorf("console of %s: libvirt did not open the stream within %v", name, consoleOpenWindow)
	}
}

// Read returns what the guest printed; io.EOF once the stream ended.
func (c *Console) Read(p []byte) (int, error) { return c.out.Read(p) }

// Write types p into the guest's console.
func (c *Console) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxConsoleWrite)]
		if err := c.tap.sendStream(chunk, statusContinue); err != nil {
			return n, fmt.Errorf("console write: %w", err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// Close finishes the stream and closes its connection (and the host
// connection OpenConsole dialled).
func (c *Console) Close() error {
	c.once.Do(func() {
		close(c.closed)
		_ = c.out.Close() // unblocks a delivery nobody reads any more
		// Tell libvirtd the stream is finished, so it releases the
		// console at once for the next session, then drop the socket.
		_ = c.tap.sendStream(nil, statusOK)
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
		}
		_ = c.tap.Conn.Close()
		if c.owned != nil {
			_ = c.owned.Close()
		}
	})
	return nil
}

type dialerFunc func() (net.Conn, error)

func (f dialerFunc) Dial() (net.Conn, error) { return f() }

// tapConn is the console's libvirt socket. It follows the framing in both
// directions to learn the serial of the open-console call and when libvirt
// has answered it, and sends stream packets with that serial.
type tapConn struct {
	net.Conn
	wmu    sync.Mutex // one packet at a time on the socket
	out    framer     // under wmu
	in     framer     // only the reading goroutine
	serial atomic.Int32
	opened atomic.Bool
	ready  chan struct{}
}

func (t *tapConn) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.out.feed(p, func(h rpcHeader) {
		if h.proc == procOpenConsole && h.typ == typeCall {
			t.serial.Store(h.serial)
		}
	})
	return t.Conn.Write(p)
}

func (t *tapConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.in.feed(p[:n], func(h rpcHeader) {
		// Not under wmu: a write stuck on a full socket must not stop
		// the reading that drains it.
		if h.proc == procOpenConsole && h.typ == typeReply && h.serial == t.serial.Load() && h.status == statusOK &&
			t.opened.CompareAndSwap(false, true) {
			close(t.ready)
		}
	})
	return n, err
}

// sendStream writes one stream packet: data with statusContinue, or the
// end of the stream (statusOK, no data).
func (t *tapConn) sendStream(data []byte, status uint32) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if !t.opened.Load() {
		return errors.New("console stream is not open")
	}
	pkt := make([]byte, rpcHeaderLen+len(data))
	binary.BigEndian.PutUint32(pkt[0:], uint32(len(pkt)))
	binary.BigEndian.PutUint32(pkt[4:], rpcProgram)
	binary.BigEndian.PutUint32(pkt[8:], rpcVersion)
	binary.BigEndian.PutUint32(pkt[12:], procOpenConsole)
	binary.BigEndian.PutUint32(pkt[16:], typeStream)
	binary.BigEndian.PutUint32(pkt[20:], uint32(t.serial.Load()))
	binary.BigEndian.PutUint32(pkt[24:], status)
	copy(pkt[rpcHeaderLen:], data)
	_, err := t.Conn.Write(pkt)
	return err
}

type rpcHeader struct {
	proc, typ, status uint32
	serial            int32
}

// framer follows libvirt's length-prefixed packets through a byte stream
// and reports each packet's header once it has seen all of it.
type framer struct {
	head []byte // the current packet's first bytes, up to the header
	left int    // bytes of the current packet not yet seen (0: at a boundary)
}

func (f *framer) feed(p []byte, header func(rpcHeader)) {
	for len(p) > 0 {
		if len(f.head) < rpcHeaderLen {
			k := min(rpcHeaderLen-len(f.head), len(p))
			f.head = append(f.head, p[:k]...)
			p = p[k:]
			if len(f.head) < rpcHeaderLen {
				return
			}
			h := f.head
			header(rpcHeader{
				proc: binary.BigEndian.Uint32(h[12:]), typ: binary.BigEndian.Uint32(h[16:]),
				serial: int32(binary.BigEndian.Uint32(h[20:])), status: binary.BigEndian.Uint32(h[24:]),
			})
			f.left = int(binary.BigEndian.Uint32(h[0:])) - rpcHeaderLen
		}
		k := min(f.left, len(p))
		p = p[k:]
		f.left -= k
		if f.left <= 0 {
			f.head, f.left = f.head[:0], 0
		}
	}
}
