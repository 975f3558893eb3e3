package tftpd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/fibrixcloud/fibrix/provisioner/tftpd"
)

// need skips when a client is absent on a developer's machine, and fails in CI.
func need(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (Debian package %s): %v", tool, pkg, err)
		}
		t.Skipf("%s not found; install the Debian package %s", tool, pkg)
	}
	return p
}

// logBuf collects the server's log lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits for a line containing all of want; the server logs after
// it has answered, so the client may return first.
func (l *logBuf) waitLog(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", want, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type running struct {
	port   string
	log    *logBuf
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, cfg tftpd.Config) *running {
	t.Helper()
	lb := &logBuf{}
	srv, err := tftpd.New(cfg, slog.New(slog.NewTextHandler(lb, nil)))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{log: lb, cancel: cancel, done: make(chan error, 1)}
	_, r.port, _ = net.SplitHostPort(conn.LocalAddr().String())
	go func() { r.done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return r
}

func randomFile(t testing.TB, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a root with a boot file, an allowed link to a binary outside
// it (like Debian's ipxe.efi), and every kind of thing we must not serve.
type fixture struct {
	root, outside string
	kpxe, efi     []byte
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{root: filepath.Join(dir, "root"), outside: filepath.Join(dir, "outside")}
	for _, d := range []string{f.root, f.outside, filepath.Join(f.root, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Odd sizes so that the last block is short, and a multiple of the
	// block size so that an empty final block is needed.
	f.kpxe = randomFile(t, filepath.Join(f.root, "undionly.kpxe"), 74213)
	f.efi = randomFile(t, filepath.Join(f.outside, "ipxe.efi"), 1468*40)
	randomFile(t, filepath.Join(f.outside, "secret"), 100)
	randomFile(t, filepath.Join(f.root, "sub", "nested"), 100)
	links := map[string]string{
		"ipxe.efi": filepath.Join(f.outside, "ipxe.efi"),
		"escape":   filepath.Join(f.outside, "secret"),
		"relative": "../outside/secret",
		"alias":    "undionly.kpxe",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(f.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(f.root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRealClientsDownload(t *testing.T) {
	f := newFixture(t)
	s := start(t, tftpd.Config{Root: f.root})
	tests := []struct {
		name   string
		tool   string
		pkg    string
		remote string
		want   []byte
		args   func(remote, local string) []string
	}{
		{"tftp-hpa", "tftp", "tftp-hpa", "undionly.kpxe", f.kpxe, func(remote, local string) []string {
			return []string{"-m", "binary", "127.0.0.1", s.port, "-c", "get", remote, local}
		}},
		{"atftp blksize 1468", "atftp", "atftp", "undionly.kpxe", f.kpxe, func(remote, local string) []string {
			return []string{"--option", "blksize 1468", "--option", "tsize 0", "-g", "-r", remote, "-l", local, "127.0.0.1", s.port}
		}},
		{"atftp blksize 8192 clamped", "atftp", "atftp", "undionly.kpxe", f.kpxe, func(remote, local string) []string {
			return []string{"--option", "blksize 8192", "-g", "-r", remote, "-l", local, "127.0.0.1", s.port}
		}},
		{"curl blksize 1468", "curl", "curl", "undionly.kpxe", f.kpxe, func(remote, local string) []string {
			return []string{"-sS", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:" + s.port + "/" + remote}
		}},
		{"curl allow-listed link leaving the root", "curl", "curl", "ipxe.efi", f.efi, func(remote, local string) []string {
			return []string{"-sS", "--tftp-blksize", "1468", "-o", local, "tftp://127.0.0.1:" + s.port + "/" + remote}
		}},
		{"tftp-hpa link inside the root", "tftp", "tftp-hpa", "alias", f.kpxe, func(remote, local string) []string {
			return []string{"-m", "binary", "127.0.0.1", s.port, "-c", "get", remote, local}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := need(t, tc.tool, tc.pkg)
			local := filepath.Join(t.TempDir(), "got")
			out, err := exec.Command(bin, tc.args(tc.remote, local)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.tool, err, out)
			}
			got, err := os.ReadFile(local)
			if err != nil {
				t.Fatalf("%s wrote nothing: %v\n%s", tc.tool, err, out)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("%s got %d bytes, want %d (content differs)", tc.tool, len(got), len(tc.want))
			}
			s.log.waitLog(t, "tftp transfer", "file="+tc.remote, fmt.Sprintf("bytes=%d", len(tc.want)), "client=127.0.0.1:", "duration=")
		})
	}
}

// TestDefaultRoot serves Debian's own binaries, through ipxe.efi's link
// to /boot.
func TestDefaultRoot(t *testing.T) {
	need(t, "curl", "curl")
	for _, name := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
		if _, err := os.Stat(filepath.Join(tftpd.DefaultRoot, name)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%v (Debian package ipxe)", err)
			}
			t.Skipf("%v; install the Debian package ipxe", err)
		}
	}
	s := start(t, tftpd.Config{})
	for _, name := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
		out, err := exec.Command("curl", "-sS", "--tftp-blksize", "1468", "tftp://127.0.0.1:"+s.port+"/"+name).Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := os.ReadFile(filepath.Join(tftpd.DefaultRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("%s: got %d bytes, want %d", name, len(out), len(want))
		}
	}
}

func TestRefused(t *testing.T) {
	need(t, "curl", "curl")
	f := newFixture(t)
	s := start(t, tftpd.Config{Root: f.root})
	tests := []struct {
		name string
		// url is after tftp://127.0.0.1:PORT; curl sends what follows the first slash.
		url    string
		reason string
	}{
		{"dot-dot", "/../outside/secret", "path traversal"},
		{"dot-dot etc", "/../../../../etc/passwd", "path traversal"},
		{"absolute", "//etc/passwd", "absolute path"},
		{"absolute into root", "/" + "/" + "undionly.kpxe", "absolute path"},
		{"subdirectory", "/sub/nested", "not directly inside the root"},
		{"backslash", "/..%5Coutside%5Csecret", "backslash in file name"},
		{"symlink escaping", "/escape", "outside the root"},
		{"relative symlink escaping", "/relative", "outside the root"},
		{"directory", "/sub", "not a regular file"},
		{"fifo", "/fifo", "not a regular file"},
		{"control character", "/undionly.kpxe%0A", "unprintable file name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("curl", "-sS", "--path-as-is", "--max-time", "10",
				"tftp://127.0.0.1:"+s.port+tc.url).CombinedOutput()
			// 68 is curl's "TFTP: file not found", what it makes of any
			// error packet (the library always sends code 1).
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 68 {
				t.Fatalf("curl: %v %q, want exit status 68", err, out)
			}
			s.log.waitLog(t, "tftp read refused", "reason=", tc.reason, "client=127.0.0.1:")
		})
	}
	// tftp-hpa prints the server's message.
	t.Run("tftp-hpa messages", func(t *testing.T) {
		need(t, "tftp", "tftp-hpa")
		for name, want := range map[string]string{
			"../outside/secret": "access violation",
			"/etc/passwd":       "access violation",
			"escape":            "access violation",
			"missing.efi":       "file not found", // not an attack
		} {
			local := filepath.Join(t.TempDir(), "got")
			out, _ := exec.Command("tftp", "-m", "binary", "127.0.0.1", s.port, "-c", "get", name, local).CombinedOutput()
			if !strings.Contains(string(out), want) {
				t.Errorf("get %s: tftp said %q, want %q", name, out, want)
			}
			if b, _ := os.ReadFile(local); len(b) > 0 {
				t.Errorf("get %s: received %d bytes", name, len(b))
			}
		}
	})
	if strings.Contains(s.log.String(), f.outside) {
		t.Errorf("log names the outside path:\n%s", s.log.String())
	}
}

// TestNULInName sends a raw request with a NUL inside the file name, which
// no client can be told to send.
func TestNULInName(t *testing.T) {
	f := newFixture(t)
	s := start(t, tftpd.Config{Root: f.root})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The library splits on NUL, so "undionly.kpxe\x00../x" arrives as a
	// name with "../x" as the mode; the request must still be answered
	// with an error or nothing, never data.
	req := append([]byte{0, 1}, []byte("undionly.kpxe\x00../outside/secret\x00octet\x00")...)
	srvAddr, _ := net.ResolveUDPAddr("udp4", "127.0.0.1:"+s.port)
	if _, err := conn.WriteTo(req, srvAddr); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	switch op := int(buf[1]); op {
	case 3: // DATA: only the named file, never the secret
		if !bytes.Equal(buf[4:n], f.kpxe[:n-4]) {
			t.Fatalf("served data that is not undionly.kpxe")
		}
	case 5, 6: // ERROR, OACK
	default:
		t.Fatalf("unexpected opcode %d", op)
	}
	t.Logf("answer: opcode %d, %q", buf[1], buf[2:min(n, 40)])
	// End the transfer so that the server is not left waiting for an ACK.
	conn.WriteTo([]byte{0, 5, 0, 0, 'b', 'y', 'e', 0}, from)
	s.log.waitLog(t, "tftp transfer failed", "file=undionly.kpxe")
}

func TestWriteRefused(t *testing.T) {
	f := newFixture(t)
	s := start(t, tftpd.Config{Root: f.root})
	src := filepath.Join(t.TempDir(), "upload")
	randomFile(t, src, 5000)
	t.Run("tftp-hpa put", func(t *testing.T) {
		need(t, "tftp", "tftp-hpa")
		out, _ := exec.Command("tftp", "-m", "binary", "127.0.0.1", s.port, "-c", "put", src, "upload").CombinedOutput()
		if !strings.Contains(string(out), "read-only") {
			t.Errorf("tftp put said %q, want the read-only error", out)
		}
	})
	t.Run("curl upload", func(t *testing.T) {
		need(t, "curl", "curl")
		out, err := exec.Command("curl", "-sS", "-T", src, "tftp://127.0.0.1:"+s.port+"/undionly.kpxe").CombinedOutput()
		if err == nil {
			t.Fatalf("curl upload succeeded: %q", out)
		}
	})
	s.log.waitLog(t, "tftp write refused", "file=upload")
	s.log.waitLog(t, "tftp write refused", "file=undionly.kpxe")
	if _, err := os.Stat(filepath.Join(f.root, "upload")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload exists in root: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(f.root, "undionly.kpxe"))
	if !bytes.Equal(got, f.kpxe) {
		t.Errorf("undionly.kpxe was changed")
	}
}

func TestCancelStopsServe(t *testing.T) {
	f := newFixture(t)
	s := start(t, tftpd.Config{Root: f.root})
	// Idle: a client has been served, then cancel.
	c, err := tftp.NewClient("127.0.0.1:" + s.port)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := c.Receive("undionly.kpxe", "octet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatal(err)
		}
		s.done <- nil // for Cleanup
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2 s of cancel")
	}
	t.Logf("idle Serve returned %v after cancel", time.Since(t0))
	// The port is closed: nothing answers any more.
	c.SetTimeout(200 * time.Millisecond)
	c.SetRetries(1)
	if _, err := c.Receive("undionly.kpxe", "octet"); err == nil {
		t.Fatal("served after cancel")
	}
}

// slowWriter makes the client acknowledge slowly, so that a transfer is in
// flight when the server is cancelled.
type slowWriter struct{ n int }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	w.n += len(p)
	return len(p), nil
}

func TestCancelDuringTransfer(t *testing.T) {
	f := newFixture(t)
	big := filepath.Join(f.root, "big")
	randomFile(t, big, 4<<20)
	s := start(t, tftpd.Config{Root: f.root})
	c, err := tftp.NewClient("127.0.0.1:" + s.port)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := c.Receive("big", "octet")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	w := &slowWriter{}
	go func() {
		_, err := wt.WriteTo(w)
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatal(err)
		}
		s.done <- nil
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2 s of cancel")
	}
	t.Logf("Serve returned %v after cancel with a transfer in flight", time.Since(t0))
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("transfer completed despite cancel")
		}
		t.Logf("client: %v after %d bytes", err, w.n)
	case <-time.After(10 * time.Second):
		t.Fatal("client never saw the transfer end")
	}
	s.log.waitLog(t, "tftp transfer failed", "file=big")
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	randomFile(t, file, 1)
	tests := []struct {
		name    string
		cfg     tftpd.Config
		wantErr string
	}{
		{"ok", tftpd.Config{Root: dir}, ""},
		{"missing root", tftpd.Config{Root: filepath.Join(dir, "nope")}, "no such file"},
		{"missing root names the fix", tftpd.Config{Root: filepath.Join(dir, "nope")}, "install the Debian package ipxe"},
		{"required file present", tftpd.Config{Root: dir, Require: []string{"file"}}, ""},
		{"required file missing", tftpd.Config{Root: dir, Require: []string{"file", "undionly.kpxe"}}, "has no file undionly.kpxe"},
		{"root is a file", tftpd.Config{Root: file}, "not a directory"},
		{"block size too small", tftpd.Config{Root: dir, BlockSize: 8}, "outside 512..65464"},
		{"block size too big", tftpd.Config{Root: dir, BlockSize: 70000}, "outside 512..65464"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tftpd.New(tc.cfg, nil)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
