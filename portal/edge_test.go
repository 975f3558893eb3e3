package portal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repeating is an endless body of one byte, so a test can send megabytes
// without holding them.
type repeating byte

func (r repeating) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// postBody sends body to base+path over a connection of its own and
// returns the status, error code and message of the answer. The body is
// written beside the read, and a server that answers before reading it all
// and closes is what the test wants, so write errors are not failures.
// length -1 sends the body chunked.
func postBody(t *testing.T, base, path, token string, body io.Reader, length int64) (int, string, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "POST " + path + " HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json\r\nConnection: close\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if length >= 0 {
		head += "Content-Length: " + strconv.FormatInt(length, 10) + "\r\n\r\n"
	} else {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	}
	go func() {
		w := bufio.NewWriter(c)
		_, _ = io.WriteString(w, head)
		if length >= 0 {
			_, _ = io.Copy(w, body)
		} else {
			buf := make([]byte, 32<<10)
			for {
				n, err := body.Read(buf)
				if n > 0 {
					_, _ = fmt.Fprintf(w, "%x\r\n%s\r\n", n, buf[:n])
				}
				if err != nil {
					break
				}
			}
			_, _ = io.WriteString(w, "0\r\n\r\n")
		}
		_ = w.Flush()
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Logf("POST %s: %d %q: %.200q", path, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	return res.StatusCode, e.Error.Code, e.Error.Message
}

func TestBodyLimits(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Limits Ltd", "o@limits.example")
	base := e.serveReal()

	// 10 MB announced: refused from the header, before the body is read.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, errCode, _ := postBody(t, base, "/api/v1/ssh-keys", tok, io.LimitReader(repeating(' '), 10<<20), 10<<20)
	runtime.ReadMemStats(&after)
	if code != http.StatusRequestEntityTooLarge || errCode != "too_large" {
		t.Errorf("10 MB body: %d %q, want 413 too_large", code, errCode)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Errorf("refusing a 10 MB body allocated %d bytes", grew)
	}
	// Chunked, no length given: cut at the server's limit.
	code, errCode, _ = postBody(t, base, "/api/v1/ssh-keys", tok, io.LimitReader(repeating(' '), 3<<20), -1)
	if code != http.StatusRequestEntityTooLarge || errCode != "too_large" {
		t.Errorf("3 MB chunked body: %d %q, want 413 too_large", code, errCode)
	}
	// Under the server's limit but over the route's: refused, nothing kept.
	key := `{"name":"big","public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB+ySVgqR1Hr3+bnYbyTq6Dk3Cxa6kLeZ4QuWnB8CqKm ` + strings.Repeat("x", 100<<10) + `"}`
	code, errCode, msg := postBody(t, base, "/api/v1/ssh-keys", tok, strings.NewReader(key), int64(len(key)))
	if code != http.StatusRequestEntityTooLarge || errCode != "too_large" || !strings.Contains(msg, "64 KiB") {
		t.Errorf("100 KiB key: %d %q %q, want 413 naming the 64 KiB limit", code, errCode, msg)
	}
	if code, body := e.api("GET", "/api/v1/ssh-keys", tok, nil); code != http.StatusOK || len(body["items"].([]any)) != 0 {
		t.Errorf("a refused key was kept: %d %v", code, body)
	}
	// The boot agent's report may be larger (a server's inventory and log):
	// a 200 KiB report reaches the handler, which refuses the unknown token.
	rep := `{"token":"nope","mode":"commissioning","mac":"52:54:00:00:00:01","status":"ok","log":["` + strings.Repeat("y", 200<<10) + `"]}`
	if code, errCode, _ := postBody(t, base, "/api/agent/v1/report", "", strings.NewReader(rep), int64(len(rep))); code == http.StatusRequestEntityTooLarge || code >= 500 {
		t.Errorf("200 KiB agent report: %d %q, want it read and judged", code, errCode)
	}
}

func TestSlowClientsAndConnectionCap(t *testing.T) {
	e := newEnv(t)
	const timeout = 700 * time.Millisecond
	srv, err := New(context.Background(), Config{PasswordCost: 4, Version: "test", ReadTimeout: timeout, MaxConnsPerIP: 4}, e.st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	base := e.serveReal()
	addr := strings.TrimPrefix(base, "http://")
	dialFrom := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	get := func(c net.Conn) (int, error) {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n"); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}

	// Four slow clients from one address: each sends half a request and
	// then nothing.
	start := time.Now()
	var slow []net.Conn
	for range 4 {
		c := dialFrom("127.0.0.1")
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: por"); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	time.Sleep(100 * time.Millisecond) // the server has accepted them
	// A fifth from that address is refused at once.
	if code, err := get(dialFrom("127.0.0.1")); code != http.StatusTooManyRequests {
		t.Errorf("a fifth connection from one address: %d %v, want 429", code, err)
	}
	// Everyone else is served meanwhile.
	if code, err := get(dialFrom("127.0.0.2")); code != http.StatusOK {
		t.Errorf("another address while one holds its cap: %d %v", code, err)
	}
	// The server ends each slow request itself, after the read timeout.
	for i, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("slow client %d was never cut", i)
		}
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("slow clients cut after %v, before the read timeout %v", took, timeout)
	}
	// Their slots are free again.
	if code, err := get(dialFrom("127.0.0.1")); code != http.StatusOK {
		t.Errorf("after the slow clients were cut: %d %v", code, err)
	}
}
