package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
)

// regionHost is one simulated hypervisor for the region tests: a unix socket
// that speaks libvirt's RPC protocol and relays every call, over one
// connection of its own, to libvirtd's test driver opened on a node file
// (test:///path/kvm-N.xml).
//
// Inside libvirtd, test:///default is one simulated host shared by every
// connection (and gone when the last one closes), so several hosts on it
// would be one host in disguise; a node file gives each connection a
// private simulated host instead, gone with that connection. A real host is
// one machine whose domains every provisioner sees and which outlives any
// of them; relaying all connections onto one connection per node file
// keeps that true while provisioners connect, crash and restart.
// Connection open and close are answered here; every other call, with its
// serial number rewritten, goes to libvirtd, which does the work.
type regionHost struct {
	socket string
	node   string // the test driver's node file
	ln     net.Listener
	up     net.Conn

	writeMu sync.Mutex // upstream writes

	mu      sync.Mutex
	serial  uint32
	routes  map[uint32]regionRoute // upstream serial → caller
	clients map[*regionHostClient]bool
	closed  bool
	err     error // why the upstream connection ended
	done    chan struct{}
}

type regionRoute struct {
	c      *regionHostClient
	serial uint32
}

type regionHostClient struct {
	conn    net.Conn
	writeMu sync.Mutex
	mu      sync.Mutex
	serials map[uint32]uint32 // caller serial → upstream serial, for streams
}

// libvirt RPC framing (src/rpc/virnetprotocol.x, src/remote/remote_protocol.x,
// src/rpc/virkeepaliveprotocol.x).
const (
	lvProgramRemote    = 0x20008086
	lvProgramKeepalive = 0x6b656570
	lvProcConnectOpen  = 1
	lvProcConnectClose = 2
	lvProcAuthList     = 66
	lvProcPing         = 1
	lvProcPong         = 2
	lvTypeCall         = 0
	lvTypeReply        = 1
	lvTypeMessage      = 2
	lvTypeStream       = 3
	lvTypeReplyFDs     = 5
	lvHeader           = 28 // length word + six header words
	lvMaxPacket        = 64 << 20
)

// regionNode is a test driver node: 16 threads, 3 GiB and a 100 GiB pool,
// the figures of libvirt's built-in test:///default.
const regionNode = `<node>
  <cpu><mhz>1400</mhz><model>i686</model><active>16</active><max>16</max>
    <nodes>2</nodes><sockets>2</sockets><cores>2</cores><threads>2</threads></cpu>
  <memory>3145728</memory>
  <pool type='dir'>
    <name>default-pool</name>
    <capacity unit='GiB'>100</capacity>
    <allocation>0</allocation>
    <available unit='GiB'>100</available>
    <target><path>/default-pool</path></target>
  </pool>
</node>
`

// startRegionHost starts a relay to a fresh simulated host in dir.
func startRegionHost(t *testing.T, dir, name string) *regionHost {
	t.Helper()
	node := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(node, []byte(regionNode), 0o644); err != nil {
		t.Fatal(err)
	}
	up, err := net.Dial("unix", libvirttest.Socket)
	if err != nil {
		t.Fatalf("host %s: dial libvirtd: %v", name, err)
	}
	h := &regionHost{socket: filepath.Join(dir, name+".sock"), node: node, up: up,
		routes: map[uint32]regionRoute{}, clients: map[*regionHostClient]bool{}, done: make(chan struct{})}
	if err := h.handshake(); err != nil {
		up.Close()
		t.Fatalf("host %s: open test://%s: %v", name, node, err)
	}
	if h.ln, err = net.Listen("unix", h.socket); err != nil {
		up.Close()
		t.Fatal(err)
	}
	go h.relayReplies()
	go h.accept()
	t.Cleanup(h.close)
	return h
}

// URI is what staff register the host as.
func (h *regionHost) URI() string { return "test://" + h.node + "?socket=" + h.socket }

// virshURI is the same host for virsh.
func (h *regionHost) virshURI() string { return "test+unix://" + h.node + "?socket=" + h.socket }

func (h *regionHost) close() {
	h.mu.Lock()
	h.closed = true
	clients := make([]*regionHostClient, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	h.ln.Close()
	h.up.Close()
	for _, c := range clients {
		c.conn.Close()
	}
	<-h.done
	os.Remove(h.socket)
}

func (h *regionHost) handshake() error {
	if err := writePacket(h.up, header(lvProgramRemote, lvProcAuthList, lvTypeCall, 1, 0), nil); err != nil {
		return err
	}
	if err := expectOK(h.up); err != nil {
		return fmt.Errorf("auth-list: %w", err)
	}
	uri := "test://" + h.node
	body := make([]byte, 0, 16+len(uri))
	body = binary.BigEndian.AppendUint32(body, 1) // name present
	body = binary.BigEndian.AppendUint32(body, uint32(len(uri)))
	body = append(body, uri...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	body = binary.BigEndian.AppendUint32(body, 0) // flags
	if err := writePacket(h.up, header(lvProgramRemote, lvProcConnectOpen, lvTypeCall, 2, 0), body); err != nil {
		return err
	}
	if err := expectOK(h.up); err != nil {
		return fmt.Errorf("connect-open: %w", err)
	}
	h.serial = 2
	return nil
}

func expectOK(r io.Reader) error {
	p, err := readPacket(r)
	if err != nil {
		return err
	}
	if st := binary.BigEndian.Uint32(p[24:]); st != 0 {
		return fmt.Errorf("status %d", st)
	}
	return nil
}

func header(prog, proc, typ, serial, status uint32) []byte {
	b := make([]byte, lvHeader)
	be := binary.BigEndian
	be.PutUint32(b[4:], prog)
	be.PutUint32(b[8:], 1)
	be.PutUint32(b[12:], proc)
	be.PutUint32(b[16:], typ)
	be.PutUint32(b[20:], serial)
	be.PutUint32(b[24:], status)
	return b
}

func writePacket(w io.Writer, hdr, body []byte) error {
	p := append(hdr, body...)
	binary.BigEndian.PutUint32(p, uint32(len(p)))
	_, err := w.Write(p)
	return err
}

func readPacket(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < lvHeader || size > lvMaxPacket {
		return nil, fmt.Errorf("bad packet length %d", size)
	}
	p := make([]byte, size)
	copy(p, n[:])
	if _, err := io.ReadFull(r, p[4:]); err != nil {
		return nil, err
	}
	return p, nil
}

// relayReplies hands libvirtd's answers back to the connection that asked.
func (h *regionHost) relayReplies() {
	defer close(h.done)
	be := binary.BigEndian
	for {
		p, err := readPacket(h.up)
		if err != nil {
			h.mu.Lock()
			if !h.closed {
				h.err = err
			}
			h.mu.Unlock()
			return
		}
		prog, proc, typ, serial := be.Uint32(p[4:]), be.Uint32(p[12:]), be.Uint32(p[16:]), be.Uint32(p[20:])
		if prog == lvProgramKeepalive {
			if proc == lvProcPing {
				h.writeMu.Lock()
				_ = writePacket(h.up, header(lvProgramKeepalive, lvProcPong, lvTypeMessage, 0, 0), nil)
				h.writeMu.Unlock()
			}
			continue
		}
		if typ != lvTypeReply && typ != lvTypeStream && typ != lvTypeReplyFDs {
			continue // events: nobody here registers for them
		}
		h.mu.Lock()
		r, ok := h.routes[serial]
		if ok && typ != lvTypeStream {
			delete(h.routes, serial)
		}
		h.mu.Unlock()
		if !ok {
			continue
		}
		be.PutUint32(p[20:], r.serial)
		// A caller that went away (a killed provisioner) just misses the
		// answer; what it asked for has happened on the host all the same.
		r.c.writeMu.Lock()
		_, _ = r.c.conn.Write(p)
		r.c.writeMu.Unlock()
	}
}

func (h *regionHost) accept() {
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			return
		}
		c := &regionHostClient{conn: conn, serials: map[uint32]uint32{}}
		h.mu.Lock()
		h.clients[c] = true
		h.mu.Unlock()
		go h.serveClient(c)
	}
}

func (h *regionHost) serveClient(c *regionHostClient) {
	defer func() {
		c.conn.Close()
		h.mu.Lock()
		delete(h.clients, c)
		for s, r := range h.routes {
			if r.c == c {
				delete(h.routes, s)
			}
		}
		h.mu.Unlock()
	}()
	be := binary.BigEndian
	reply := func(p []byte, typ uint32) {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		_ = writePacket(c.conn, header(be.Uint32(p[4:]), be.Uint32(p[12:]), typ, be.Uint32(p[20:]), 0), nil)
	}
	for {
		p, err := readPacket(c.conn)
		if err != nil {
			return
		}
		prog, proc, typ, serial := be.Uint32(p[4:]), be.Uint32(p[12:]), be.Uint32(p[16:]), be.Uint32(p[20:])
		switch {
		case prog == lvProgramKeepalive:
			if proc == lvProcPing {
				be.PutUint32(p[12:], lvProcPong)
				reply(p, lvTypeMessage)
			}
			continue
		case prog == lvProgramRemote && typ == lvTypeCall && (proc == lvProcConnectOpen || proc == lvProcConnectClose):
			reply(p, lvTypeReply)
			continue
		case typ != lvTypeCall && typ != lvTypeStream:
			continue
		}
		h.mu.Lock()
		var up uint32
		if typ == lvTypeCall {
			h.serial++
			up = h.serial
			h.routes[up] = regionRoute{c: c, serial: serial}
			c.mu.Lock()
			c.serials[serial] = up
			c.mu.Unlock()
		} else {
			c.mu.Lock()
			up = c.serials[serial]
			c.mu.Unlock()
			if _, ok := h.routes[up]; !ok {
				h.routes[up] = regionRoute{c: c, serial: serial}
			}
		}
		h.mu.Unlock()
		be.PutUint32(p[20:], up)
		h.writeMu.Lock()
		_, err = h.up.Write(p)
		h.writeMu.Unlock()
		if err != nil {
			return
		}
	}
}

// failure reports why the relay lost libvirtd, if it did.
func (h *regionHost) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil && !errors.Is(h.err, net.ErrClosed) {
		return h.err
	}
	return nil
}
