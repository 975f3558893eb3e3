package tftpd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fuzzRoot is a root like newFixture's in tftpd_test.go: the boot files,
// a link to a binary outside it, and everything that must not be served.
type fuzzRoot struct {
	dir, root     string
	kpxe, efi     []byte
	secret, other []byte
}

// served are the names a client may read, and what each holds.
func (r fuzzRoot) served() map[string][]byte {
	return map[string][]byte{"undionly.kpxe": r.kpxe, "alias": r.kpxe, "ipxe.efi": r.efi}
}

// fuzzBytes is reproducible content without CR or LF, so that netascii
// transfers carry it unchanged too.
func fuzzBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		for b[i] = byte(rng.Uint32()); b[i] == '\n' || b[i] == '\r'; b[i] = byte(rng.Uint32()) {
		}
	}
	return b
}

func newFuzzRoot(f *testing.F) fuzzRoot {
	f.Helper()
	dir := f.TempDir()
	r := fuzzRoot{dir: dir, root: filepath.Join(dir, "root")}
	r.kpxe, r.efi = fuzzBytes(1, 74213), fuzzBytes(2, 1468*40)
	r.secret, r.other = fuzzBytes(3, 3000), fuzzBytes(4, 3001)
	for _, d := range []string{r.root, filepath.Join(dir, "outside"), filepath.Join(r.root, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for path, b := range map[string][]byte{
		filepath.Join(r.root, "undionly.kpxe"):    r.kpxe,
		filepath.Join(dir, "outside", "ipxe.efi"): r.efi,
		filepath.Join(dir, "outside", "secret"):   r.secret,
		filepath.Join(dir, "secret"):              r.secret,
		filepath.Join(r.root, "sub", "nested"):    r.other,
	} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"ipxe.efi": filepath.Join(dir, "outside", "ipxe.efi"),
		"escape":   filepath.Join(dir, "outside", "secret"),
		"relative": "../outside/secret",
		"alias":    "undionly.kpxe",
	} {
		if err := os.Symlink(target, filepath.Join(r.root, name)); err != nil {
			f.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(r.root, "fifo"), 0o644); err != nil {
		f.Fatal(err)
	}
	return r
}

// escapes reports whether a requested name could reach past the root by
// any reading of it, independently of checkName.
func escapes(name string) bool {
	return filepath.IsAbs(name) || strings.Contains(name, "..") || strings.ContainsAny(name, "/\\\x00") ||
		filepath.Dir(filepath.Join("/root", name)) != "/root"
}

// transfer stands in for the library's sender.
type transfer struct {
	size  int64
	sized bool
	got   bytes.Buffer
}

func (tr *transfer) ReadFrom(r io.Reader) (int64, error) { return io.Copy(&tr.got, r) }
func (tr *transfer) SetSize(n int64)                     { tr.size, tr.sized = n, true }
func (tr *transfer) RemoteAddr() net.UDPAddr {
	return net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
}

var fuzzNames = []string{
	"undionly.kpxe", "ipxe.efi", "alias", "snponly.efi", "missing.efi", "escape", "relative",
	"sub", "sub/nested", "fifo", ".", "..", "../secret", "../outside/secret", "/etc/passwd",
	"//undionly.kpxe", "..\\secret", "undionly.kpxe\x00../secret", "undionly.kpxe\n", "\u00a0",
	"./undionly.kpxe", "sub/../undionly.kpxe", "...", "a..b", "\xff\xfe", strings.Repeat("a", 256), "",
}

// FuzzReadHandler fuzzes the file names our read handler is given: it
// serves exactly the boot files, refuses every name that could leave the
// root as an access violation, and tells clients nothing else.
func FuzzReadHandler(f *testing.F) {
	r := newFuzzRoot(f)
	s, err := New(Config{Root: r.root}, nil)
	if err != nil {
		f.Fatal(err)
	}
	root, err := os.OpenRoot(r.root)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { root.Close() })
	read := s.readHandler(context.Background(), root)
	for _, name := range fuzzNames {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		tr := &transfer{}
		err := read(name, tr)
		want, ok := r.served()[name]
		switch {
		case ok && err != nil:
			t.Fatalf("%q: %v, want the file", name, err)
		case ok:
			if !bytes.Equal(tr.got.Bytes(), want) || !tr.sized || tr.size != int64(len(want)) {
				t.Fatalf("%q: served %d bytes (size %d), want the %d of the file", name, tr.got.Len(), tr.size, len(want))
			}
		case err == nil:
			t.Fatalf("%q served %d bytes; only the boot files may be", name, tr.got.Len())
		case !errors.Is(err, errNotFound) && !errors.Is(err, errAccess):
			t.Fatalf("%q: client told %q", name, err)
		case escapes(name) && !errors.Is(err, errAccess):
			t.Fatalf("%q reaches past the root but is answered %q, not refused", name, err)
		}
		if tr.got.Len() > 0 && !ok {
			t.Fatalf("%q: %d bytes written to the client", name, tr.got.Len())
		}
	})
}

// TFTP opcodes (RFC 1350, 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// exchange sends pkt from a fresh client socket and returns the first
// answer, or nil if none came within wait (none is awaited for 0).
func exchange(t *testing.T, server net.Addr, pkt []byte, wait time.Duration) (net.PacketConn, []byte, net.Addr) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.WriteTo(pkt, server); err != nil {
		t.Fatal(err)
	}
	if wait == 0 {
		return c, nil, nil
	}
	reply, from := receive(t, c, wait)
	return c, reply, from
}

func receive(t *testing.T, c net.PacketConn, wait time.Duration) ([]byte, net.Addr) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, from, err := c.ReadFrom(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("answer of %d bytes: %q", n, buf[:n])
	}
	return buf[:n], from
}

// abort ends a transfer the way a client gives up, so that the server
// does not keep retrying it.
func abort(c net.PacketConn, to net.Addr) {
	c.WriteTo([]byte{0, opERROR, 0, 0, 'f', 'u', 'z', 'z', 0}, to)
}

// splitRQ reads a request the way the library does: NUL-separated name,
// mode and option pairs, the last of a repeated option winning.
func splitRQ(pkt []byte) (name string, opts map[string]string) {
	bs := bytes.Split(pkt[2:], []byte{0})
	opts = map[string]string{}
	for i := 2; i+1 < len(bs); i += 2 {
		opts[string(bs[i])] = string(bs[i+1])
	}
	return string(bs[0]), opts
}

// FuzzServer sends requests built from the input to a real server on
// loopback. An RRQ or WRQ is always answered with DATA, OACK or ERROR,
// anything else with nothing or an ERROR; data comes only from the boot
// files; acknowledged options are ones asked for, within RFC 2347-2349
// and the configured block size (timeout and windowsize are not
// acknowledged, which RFC 2347 allows); and a plain request is served
// afterwards.
func FuzzServer(f *testing.F) {
	r := newFuzzRoot(f)
	s, err := New(Config{Root: r.root}, nil)
	if err != nil {
		f.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	server := conn.LocalAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Serve: %v", err)
		}
	})

	for _, seed := range []struct {
		op               uint16
		name, mode, opts string
	}{
		{opRRQ, "undionly.kpxe", "octet", ""},
		{opRRQ, "undionly.kpxe", "octet", "blksize\x001468\x00tsize\x000\x00"},
		{opRRQ, "ipxe.efi", "octet", "blksize\x0065464\x00tsize\x000\x00timeout\x001\x00windowsize\x0016\x00"},
		{opRRQ, "alias", "netascii", "blksize\x008\x00"},
		{opRRQ, "undionly.kpxe", "OCTET", "BLKSIZE\x001024\x00TSize\x000\x00"},
		{opRRQ, "undionly.kpxe", "octet", "blksize\x0065465\x00tsize\x0099999999999999999999\x00"},
		{opRRQ, "undionly.kpxe", "octet", "blksize\x00-1\x00timeout\x000\x00windowsize\x0065536\x00"},
		{opRRQ, "undionly.kpxe", "octet", "blksize\x00+1000\x00blksize\x00600\x00tsize\x00-5\x00"},
		{opRRQ, "undionly.kpxe", "octet", "blksize\x00 1468\x00odd"},
		{opRRQ, "../outside/secret", "octet", "tsize\x000\x00"},
		{opRRQ, "escape", "octet", "blksize\x001468\x00"},
		{opRRQ, "undionly.kpxe\x00../secret", "octet", ""},
		{opRRQ, "/etc/passwd", "", ""},
		{opRRQ, "fifo", "octet", ""},
		{opWRQ, "upload", "octet", "blksize\x001468\x00tsize\x005000\x00"},
		{opWRQ, "undionly.kpxe", "octet", ""},
		{opDATA, "\x00\x01", "", ""},
		{opACK, "", "", ""},
		{opERROR, "", "", ""},
		{opOACK, "blksize", "512", ""},
		{0, "", "", ""},
		{0xffff, "garbage", "\xff", "\x00\x00"},
	} {
		f.Add(seed.op, seed.name, seed.mode, seed.opts)
	}
	f.Fuzz(func(t *testing.T, op uint16, name, mode, opts string) {
		pkt := binary.BigEndian.AppendUint16(nil, op)
		pkt = append(pkt, name...)
		pkt = append(pkt, 0)
		pkt = append(pkt, mode...)
		pkt = append(pkt, 0)
		pkt = append(pkt, opts...)
		if len(pkt) > 516 {
			// The library reads requests into a 516-byte buffer.
			pkt = pkt[:516]
		}
		if op != opRRQ && op != opWRQ {
			// The server reads its socket in order, so once the plain
			// request below is answered, any answer to this is in.
			c, _, _ := exchange(t, server, pkt, 0)
			defer func() {
				if reply, _ := receive(t, c, 10*time.Millisecond); reply != nil && binary.BigEndian.Uint16(reply) != opERROR {
					t.Fatalf("%q answered with opcode %d", pkt, binary.BigEndian.Uint16(reply))
				}
			}()
		} else {
			c, reply, from := exchange(t, server, pkt, 3*time.Second)
			if reply == nil && bytes.Count(pkt[2:], []byte{0}) >= 1 {
				t.Fatalf("request %q not answered", pkt)
			}
			if reply != nil {
				checkAnswer(t, r, pkt, c, reply, from)
			}
		}

		// The server still serves a plain request.
		c, reply, from := exchange(t, server, []byte("\x00\x01undionly.kpxe\x00octet\x00"), 3*time.Second)
		if reply == nil || binary.BigEndian.Uint16(reply) != opDATA || binary.BigEndian.Uint16(reply[2:]) != 1 ||
			!bytes.Equal(reply[4:], r.kpxe[:512]) {
			t.Fatalf("plain request afterwards answered %q", reply[:min(len(reply), 40)])
		}
		abort(c, from)
	})
}

// checkAnswer judges the first answer to an RRQ or WRQ, following an OACK
// to the first DATA.
func checkAnswer(t *testing.T, r fuzzRoot, pkt []byte, c net.PacketConn, reply []byte, from net.Addr) {
	t.Helper()
	name, asked := splitRQ(pkt)
	op := binary.BigEndian.Uint16(pkt)
	defer abort(c, from)
	blksize := 512
	var tsize int64 = -1
	switch got := binary.BigEndian.Uint16(reply); got {
	case opERROR:
		if msg := string(reply[4:]); strings.Contains(msg, r.dir) {
			t.Fatalf("error names a path on the server: %q", msg)
		}
		return
	case opOACK:
		if op != opRRQ {
			t.Fatalf("%q answered with OACK", pkt)
		}
		_, acked := splitRQ(append([]byte{0, 0, 0, 0}, reply[2:]...))
		for k, v := range acked {
			want, ok := asked[k]
			if !ok {
				t.Fatalf("OACK %s=%q was not asked for in %q", k, v, pkt)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("OACK %s=%q is not a number", k, v)
			}
			switch k {
			case "blksize":
				req, _ := strconv.Atoi(want)
				// RFC 2348 allows 8..65464; we never grant more than asked
				// or than the configured size.
				if n < 8 || n > 65464 || n > int64(req) || n > DefaultBlockSize {
					t.Fatalf("OACK blksize=%d for blksize=%q", n, want)
				}
				blksize = int(n)
			case "tsize":
				tsize = n
			default:
				t.Fatalf("OACK acknowledges %s=%q, which we do not implement", k, v)
			}
		}
		if len(acked) == 0 {
			t.Fatalf("empty OACK")
		}
		c.WriteTo([]byte{0, opACK, 0, 0}, from)
		if reply, _ = receive(t, c, 3*time.Second); reply == nil {
			t.Fatalf("no DATA after ACK of the OACK")
		}
		if binary.BigEndian.Uint16(reply) != opDATA {
			t.Fatalf("after the OACK, opcode %d", binary.BigEndian.Uint16(reply))
		}
	case opDATA:
		if op != opRRQ {
			t.Fatalf("%q answered with DATA", pkt)
		}
	default:
		t.Fatalf("%q answered with opcode %d", pkt, got)
	}
	// DATA block 1, of a served file only.
	want, ok := r.served()[name]
	if !ok {
		t.Fatalf("%q: data served for %q", pkt, name)
	}
	if block := binary.BigEndian.Uint16(reply[2:]); block != 1 {
		t.Fatalf("first DATA is block %d", block)
	}
	if !bytes.Equal(reply[4:], want[:min(blksize, len(want))]) {
		t.Fatalf("%q: first block (%d bytes) is not the start of %s with blksize %d", pkt, len(reply)-4, name, blksize)
	}
	if tsize != -1 && tsize != int64(len(want)) {
		t.Fatalf("OACK tsize=%d, file has %d bytes", tsize, len(want))
	}
}
