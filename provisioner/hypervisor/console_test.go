package hypervisor

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
)

// echoInit is the /init of the console test guest: it says it is ready
// (again and again, since QEMU drops what it prints while no console is
// attached) and answers every line typed with the line upper-cased.
const echoInit = `package main

import (
	"bufio"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	var typed atomic.Bool
	go func() {
		for !typed.Load() {
			os.Stdout.WriteString("\nconsole-echo ready\n")
			time.Sleep(time.Second)
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		typed.Store(true)
		os.Stdout.WriteString("\nreply:" + strings.ToUpper(strings.TrimSpace(sc.Text())) + "\n")
	}
	select {}
}
`

// consoleReader collects what a console shows.
type consoleReader struct {
	mu   sync.Mutex
	seen bytes.Buffer
	err  error
}

func readConsole(c *Console) *consoleReader {
	r := &consoleReader{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			r.mu.Lock()
			r.seen.Write(buf[:n])
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *consoleReader) has(want string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Contains(r.seen.String(), want)
}

func (r *consoleReader) waitFor(t *testing.T, want string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		s, err := r.seen.String(), r.err
		r.mu.Unlock()
		if strings.Contains(s, want) {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("no %q on the console (err %v); it showed:\n%s", want, err, s)
		}
	}
}

// TestQEMUConsole boots a real guest (a kernel and a tiny Go /init) and
// talks to it through its serial console, on qemu:///system and over
// qemu+ssh: what the guest prints arrives, what is typed reaches it, a
// second session is refused while one is open, and a closed session frees
// the console for the next.
func TestQEMUConsole(t *testing.T) {
	local := dial(t, "qemu:///system")
	kernel := probeKernel(t)
	dir := hostDir(t)
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	kernel = filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, k, 0o644); err != nil {
		t.Fatal(err)
	}
	initrd := libvirttest.Initramfs(t, dir, "echo.cpio", echoInit)
	cx := ctx(t, 3*time.Minute)
	spec := DomainSpec{Name: unique("fibrix-test-console-"), UUID: uuid.NewString(), VCPUs: 1, MemoryMiB: 256, Type: TypeQEMU,
		Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0 panic=-1 quiet"}
	t.Cleanup(func() {
		cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = local.Destroy(cx, spec.Name)
		_ = local.Undefine(cx, spec.Name)
	})
	if err := local.Define(cx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := local.OpenConsole(cx, spec.Name); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("console of a shut-off domain: %v, want ErrNotRunning", err)
	}
	if _, err := local.OpenConsole(cx, "fibrix-test-no-such-domain"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("console of no domain: %v, want ErrNotFound", err)
	}
	if err := local.Start(cx, spec.Name); err != nil {
		t.Fatal(err)
	}

	clientKey, _ := libvirttest.NewKey(t)
	addr, hostKey := libvirttest.SSHD(t, clientKey.PublicKey())
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"local", Config{URI: "qemu:///system"}},
		{"qemu+ssh", Config{URI: "qemu+ssh://root@" + addr + "/system", HostKey: libvirttest.Authorized(hostKey), Signer: clientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			con, err := OpenConsole(cx, tc.cfg, spec.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer con.Close()
			r := readConsole(con)
			word := strings.ReplaceAll(tc.name, "+", "-") + "-typed"
			// The guest may still be booting: type until it answers.
			for deadline := time.Now().Add(2 * time.Minute); !r.has("reply:" + strings.ToUpper(word)); time.Sleep(time.Second) {
				if time.Now().After(deadline) {
					r.waitFor(t, "reply:"+strings.ToUpper(word), 0)
				}
				if _, err := con.Write([]byte(word + "\r")); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("typed and answered after %v", time.Since(start).Round(time.Millisecond))
			if _, err := OpenConsole(cx, tc.cfg, spec.Name); !errors.Is(err, ErrConsoleBusy) {
				t.Errorf("second session: %v, want ErrConsoleBusy", err)
			}
			if err := con.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := con.Write([]byte("x")); err == nil {
				t.Error("write after Close succeeded")
			}
		})
	}
}

// TestFramer follows packets cut at every byte boundary.
func TestFramer(t *testing.T) {
	var stream []byte
	var want []rpcHeader
	for i, payload := range []int{0, 5, 4096} {
		h := rpcHeader{proc: uint32(200 + i), typ: uint32(i), serial: int32(i + 1), status: uint32(i % 3)}
		want = append(want, h)
		t := &tapConn{}
		t.serial.Store(h.serial)
		t.opened.Store(true)
		var buf bytes.Buffer
		t.Conn = &writeConn{w: &buf}
		pkt := make([]byte, rpcHeaderLen+payload)
		// Reuse the sender's framing, then patch in this header's fields.
		if err := t.sendStream(make([]byte, payload), h.status); err != nil {
			panic(err)
		}
		copy(pkt, buf.Bytes())
		putHeader(pkt, h)
		stream = append(stream, pkt...)
	}
	for cut := 1; cut <= 64; cut++ {
		var f framer
		var got []rpcHeader
		for p := stream; len(p) > 0; {
			n := min(cut, len(p))
			f.feed(p[:n], func(h rpcHeader) { got = append(got, h) })
			p = p[n:]
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(rpcHeader{})); diff != "" {
			t.Fatalf("cut %d (-want +got):\n%s", cut, diff)
		}
	}
}

func putHeader(pkt []byte, h rpcHeader) {
	be := func(off int, v uint32) {
		pkt[off], pkt[off+1], pkt[off+2], pkt[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	be(12, h.proc)
	be(16, h.typ)
	be(20, uint32(h.serial))
	be(24, h.status)
}

// writeConn is a net.Conn that only records writes.
type writeConn struct {
	net.Conn // nil: only Write is called
	w        *bytes.Buffer
}

func (c *writeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
