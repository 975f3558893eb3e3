package portal

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// testConsoles stands in for the provisioner's side: each console is a pair
// of pipes the test plays the guest on. The real stream is exercised by the
// end-to-end test against a booted guest.
type testConsoles struct {
	mu     sync.Mutex
	opened chan *testConsole
	err    error
}

func newTestConsoles() *testConsoles { return &testConsoles{opened: make(chan *testConsole, 4)} }

func (f *testConsoles) OpenConsole(_ context.Context, vmID string) (io.ReadWriteCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	r, w := io.Pipe()
	c := &testConsole{vmID: vmID, out: r, guest: w, typed: make(chan string, 16), closed: make(chan struct{})}
	f.opened <- c
	return c, nil
}

type testConsole struct {
	vmID   string
	out    *io.PipeReader
	guest  *io.PipeWriter // what the guest prints
	typed  chan string
	once   sync.Once
	closed chan struct{}
}

func (c *testConsole) Read(p []byte) (int, error) { return c.out.Read(p) }
func (c *testConsole) Write(p []byte) (int, error) {
	c.typed <- string(p)
	return len(p), nil
}
func (c *testConsole) Close() error {
	c.once.Do(func() { _ = c.guest.Close(); close(c.closed) })
	return nil
}

// consoleEnv is a portal serving on a real listener, for WebSockets.
func consoleEnv(t *testing.T, idle time.Duration) (*env, *testConsoles, string) {
	t.Helper()
	e := newEnv(t)
	cons := newTestConsoles()
	e.srv.cfg.Consoles, e.srv.cfg.ConsoleIdle = cons, idle
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, cons, "ws://" + ln.Addr().String()
}

func dialConsole(t *testing.T, url, token string) (*websocket.Conn, int) {
	t.Helper()
	ws, res, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if res == nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		return nil, res.StatusCode
	}
	return ws, http.StatusSwitchingProtocols
}

func upgradeRequest(method, path string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return req
}

func auditActions(t *testing.T, e *env, tenantID, prefix string) []store.AuditEntry {
	t.Helper()
	list, _, err := e.st.ListAudit(context.Background(), store.AuditFilter{TenantID: tenantID, Action: prefix}, store.Page{Number: 1, PerPage: 50})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestVMConsoleAccess(t *testing.T) {
	e := newEnv(t)
	e.srv.cfg.Consoles = newTestConsoles()
	owner := e.customer("Consoles", "o@consoles.example")
	key := e.addKey(owner, "laptop")
	e.image("debian-12")
	vm := e.order(owner, "web", "nano", "debian-12", key)
	ro := e.member(owner, "ro@consoles.example", store.RoleReadOnly)
	roToken := e.apiToken(owner, store.ScopeRead)
	other := e.customer("Others", "x@others.example")
	path := apiPrefix + "/vms/" + vm + "/console"

	status := func(token string, req *http.Request) (int, string) {
		req.Header.Set("Authorization", "Bearer "+token)
		res := e.do(req)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// Not running yet: 409, audited as a refusal.
	if code, body := status(owner, upgradeRequest("GET", path)); code != http.StatusConflict || !strings.Contains(body, "while the VM runs") {
		t.Errorf("pending VM: %d %s", code, body)
	}
	runVM(t, e, vm)
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"read-only member", ro, path, http.StatusForbidden},
		{"read-only token", roToken, path, http.StatusForbidden},
		{"another tenant", other, path, http.StatusNotFound},
		{"unknown vm", owner, apiPrefix + "/vms/nope/console", http.StatusNotFound},
		{"unauthenticated", "", path, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := status(tc.token, upgradeRequest("GET", tc.path)); code != tc.want {
				t.Errorf("%d, want %d: %s", code, tc.want, body)
			}
		})
	}
	if code, body := status(owner, httptest.NewRequest("GET", path, nil)); code != http.StatusUpgradeRequired || !strings.Contains(body, "WebSocket") {
		t.Errorf("no upgrade: %d %s", code, body)
	}

	// A portal without the provisioner says where the console is.
	e.srv.cfg.Consoles = nil
	if code, body := status(owner, upgradeRequest("GET", path)); code != http.StatusServiceUnavailable || !strings.Contains(body, "provisioner role") {
		t.Errorf("portal-only: %d %s", code, body)
	}
	e.srv.cfg.Consoles = &testConsoles{err: errors.New("ssh: handshake failed")}
	if code, body := status(owner, upgradeRequest("GET", path)); code != http.StatusBadGateway || strings.Contains(body, "ssh:") {
		t.Errorf("host failure: %d %s", code, body)
	}

	// The console page's socket takes the session cookie, from this origin only.
	e.srv.cfg.Consoles = newTestConsoles()
	b := e.browser()
	b.login("o@consoles.example", "correct horse battery")
	for _, tc := range []struct {
		name, origin string
		want         int
	}{
		{"no origin", "", http.StatusForbidden},
		{"another site", "https://evil.example", http.StatusForbidden},
	} {
		t.Run("cookie "+tc.name, func(t *testing.T) {
			req := upgradeRequest("GET", "/vms/"+vm+"/console/ws")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if res := b.send(req); res.StatusCode != tc.want {
				t.Errorf("%d, want %d", res.StatusCode, tc.want)
			}
		})
	}
	res, doc := b.get("/vms/" + vm + "/console")
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid=console-terminal]`).AttrOr("data-ws", "") != "/vms/"+vm+"/console/ws" {
		t.Errorf("console page: %d", res.StatusCode)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("console page Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	if txt := doc.Text(); !strings.Contains(txt, "closes after 15 minutes without typing") {
		t.Errorf("console page does not state the idle timeout for a person:\n%s", txt)
	}
	_, doc = b.get("/vms/" + vm)
	if doc.Find(`[data-testid=vm-console-link]`).AttrOr("href", "") != "/vms/"+vm+"/console" {
		t.Error("the VM page does not link to the console")
	}
	roBrowser := e.browser()
	roBrowser.login("ro@consoles.example", "member password 1")
	if res, _ := roBrowser.get("/vms/" + vm + "/console"); res.StatusCode != http.StatusForbidden {
		t.Errorf("read-only member's console page: %d", res.StatusCode)
	}
	tenantID, _ := e.account(owner)
	if refusals := auditActions(t, e, tenantID, "vm.console"); len(refusals) == 0 || refusals[len(refusals)-1].Result != store.ResultFailure {
		t.Errorf("refusals not audited: %+v", refusals)
	}
}

func TestVMConsoleRelay(t *testing.T) {
	e, cons, base := consoleEnv(t, time.Minute)
	owner := e.customer("Relay", "o@relay.example")
	key := e.addKey(owner, "laptop")
	e.image("debian-12")
	vm := e.order(owner, "web", "nano", "debian-12", key)
	runVM(t, e, vm)
	url := base + apiPrefix + "/vms/" + vm + "/console"

	ws, code := dialConsole(t, url, owner)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("open: %d", code)
	}
	con := <-cons.opened
	if con.vmID != vm {
		t.Errorf("opened the console of %s", con.vmID)
	}
	go func() { _, _ = con.guest.Write([]byte("\r\nweb login: ")) }()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil || string(msg) != "\r\nweb login: " {
		t.Fatalf("guest output: %q %v", msg, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("root\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case typed := <-con.typed:
		if typed != "root\r" {
			t.Errorf("typed %q", typed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("keystrokes did not reach the console")
	}

	// One session per VM.
	if _, code := dialConsole(t, url, owner); code != http.StatusConflict {
		t.Errorf("second session: %d, want 409", code)
	}
	ws.Close()
	select {
	case <-con.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closing the WebSocket did not close the console")
	}
	tenantID, _ := e.account(owner)
	waitFor(t, func() bool { return len(auditActions(t, e, tenantID, "vm.console_closed")) == 1 })
	closed := auditActions(t, e, tenantID, "vm.console_closed")[0]
	if closed.Result != store.ResultSuccess || !strings.Contains(closed.Detail, "13 bytes shown, 5 typed") || closed.TargetID != vm {
		t.Errorf("close entry: %+v", closed)
	}
	var opened int
	for _, a := range auditActions(t, e, tenantID, "vm.console") {
		if a.Action == "vm.console" && a.Result == store.ResultSuccess {
			opened++
		}
	}
	if opened != 1 {
		t.Errorf("%d open entries, want 1", opened)
	}
	// The session is free again.
	ws, code = dialConsole(t, url, owner)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("reopen: %d", code)
	}
	ws.Close()
}

func TestVMConsoleIdleClose(t *testing.T) {
	e, cons, base := consoleEnv(t, 300*time.Millisecond)
	owner := e.customer("Idle", "o@idle.example")
	key := e.addKey(owner, "laptop")
	e.image("debian-12")
	vm := e.order(owner, "web", "nano", "debian-12", key)
	runVM(t, e, vm)
	start := time.Now()
	ws, code := dialConsole(t, base+apiPrefix+"/vms/"+vm+"/console", owner)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("open: %d", code)
	}
	defer ws.Close()
	con := <-cons.opened
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var shown string
	var closeErr *websocket.CloseError
	for {
		_, msg, err := ws.ReadMessage()
		if errors.As(err, &closeErr) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v (shown %q)", err, shown)
		}
		shown += string(msg)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("closed after %v", took)
	}
	if !strings.Contains(shown, "console closed: no input for 300ms") || closeErr.Code != websocket.CloseNormalClosure {
		t.Errorf("shown %q, close %v", shown, closeErr)
	}
	select {
	case <-con.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle session left the console open")
	}
	tenantID, _ := e.account(owner)
	waitFor(t, func() bool { return len(auditActions(t, e, tenantID, "vm.console_closed")) == 1 })
	if d := auditActions(t, e, tenantID, "vm.console_closed")[0].Detail; !strings.Contains(d, "idle for 300ms") {
		t.Errorf("close entry %q", d)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15 minutes", time.Hour + 30*time.Minute: "1 hour 30 minutes", 45 * time.Second: "45 seconds",
		time.Minute + 1500*time.Millisecond: "1 minute 1 second", 2 * time.Hour: "2 hours", 0: "0 seconds", 300 * time.Millisecond: "0 seconds",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
