package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fasthttp/websocket"
)

// e2eConsole opens the running guest's serial console through the portal:
// from a Go WebSocket client with the customer's API token, and in
// Chromium on the VM's console page, and reads the guest's login prompt in
// both.
func e2eConsole(t *testing.T, g *e2eGuest) {
	wsURL := "ws" + strings.TrimPrefix(g.cust.base, "http") + "/api/v1/vms/" + g.vmID + "/console"

	// Without an upgrade the endpoint says what it is.
	if code := g.cust.call("GET", "/vms/"+g.vmID+"/console", nil, nil); code != http.StatusUpgradeRequired {
		t.Errorf("console without upgrade: %d, want 426", code)
	}

	start := time.Now()
	ws, res, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + g.cust.token}})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("open the console: %v (status %d)", err, status)
	}
	first := newConsoleReader(t, ws)
	first.expect("login:", 90*time.Second, true)
	ws.Close()
	t.Logf("WebSocket: login prompt after %v:\n%s", time.Since(start).Round(time.Millisecond), lastLines(first.seen.String(), 3))

	// The session is in the tenant's activity log, opened and closed.
	waitAudit(t, g, "vm.console_closed")

	// The console page in the browser.
	exe := chromium(t)
	ctx := browserContext(t, exe)
	shots := artifacts(t)
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("log in",
		chromedp.Navigate(g.cust.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "owner@e2e.example"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=site-header]`)),
		chromedp.Navigate(g.cust.base+"/vms/"+g.vmID),
		chromedp.Click(chromedp.CSS(`[data-testid=vm-console-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=console-terminal] .xterm`)),
	)
	const screen = `(() => { const t = window.fibrixConsole; if (!t) return ""; const b = t.buffer.active; let s = "";
		for (let i = 0; i < b.length; i++) { const l = b.getLine(i); if (l) s += l.translateToString(true) + "\n"; } return s; })()`
	var shown string
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(shown, "login:") {
		if time.Now().After(deadline) {
			t.Fatalf("no login prompt in the browser's terminal within 90 s; it shows:\n%s", shown)
		}
		// Enter makes getty print its prompt again.
		step("press Enter", chromedp.Click(chromedp.CSS(`[data-testid=console-terminal] .xterm`)), chromedp.KeyEvent("\r"))
		time.Sleep(2 * time.Second)
		if shown, err = chromedp.Run(ctx, chromedp.Evaluate[string](screen)); err != nil {
			t.Fatal(err)
		}
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shots, "console-login-prompt.png")
	if err := os.WriteFile(shot, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser: login prompt in the terminal; screenshot %s:\n%s", shot, lastLines(strings.TrimRight(shown, "\n"), 3))
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=console-status]`)))
	if !strings.HasPrefix(status, "Connected") {
		t.Errorf("console status: %q", status)
	}
	// Leaving the page ends the session; the VM runs on for the next step.
	step("leave", chromedp.Navigate(g.cust.base+"/vms/"+g.vmID))
	var vm e2eVM
	g.cust.must("GET", "/vms/"+g.vmID, nil, &vm, 200)
	if vm.State != "running" {
		t.Errorf("VM %s after the console, want running", vm.State)
	}
	// Same guest, same host keys: SSH with the pinned keys still works.
	if out := g.ssh(t, "hostname", time.Minute); strings.TrimSpace(out) != "e2e-web" {
		t.Errorf("ssh after the console: %q", out)
	}

	e2eRescue(t, g, wsURL)
}

// e2eRescue resets the console password through the API, waits for the
// reboot that applies it, and logs in with it on the console; SSH with the
// pinned host keys works after it, so the guest kept its keys.
func e2eRescue(t *testing.T, g *e2eGuest, wsURL string) {
	var reset struct {
		Password  string `json:"password"`
		Operation struct{ ID, Type string }
	}
	start := time.Now()
	g.cust.must("POST", "/vms/"+g.vmID+"/password-reset", nil, &reset, 202)
	if len(reset.Password) != 20 || reset.Operation.Type != "reboot" {
		t.Fatalf("password reset answered a %d-character password and a %q", len(reset.Password), reset.Operation.Type)
	}
	g.wait(t, reset.Operation.ID)
	t.Logf("password reset: reboot done after %v", time.Since(start).Round(time.Second))

	ws, res, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + g.cust.token}})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("open the console: %v (status %d)", err, status)
	}
	defer ws.Close()
	con := newConsoleReader(t, ws)
	// The reboot operation is done once the guest was told to reboot: the
	// old system may still show its prompt while it shuts down, so the
	// login waits for the new kernel to start. getty may also ask before
	// cloud-init has set the password on the way up; a login that gets no
	// password prompt or is refused is tried again until the deadline.
	if con.wait([]string{"Run /init as init process"}, 3*time.Minute, false) == "" {
		t.Logf("no kernel start seen on the console since the reset; logging in anyway")
	}
	deadline := time.Now().Add(5 * time.Minute)
	for attempt := 1; ; attempt++ {
		con.expect("login:", time.Until(deadline), true)
		con.send("debian\r")
		if con.wait([]string{"Password:"}, 30*time.Second, false) == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no password prompt on the console after %d logins; it showed:\n%s", attempt, lastLines(con.seen.String(), 20))
			}
			t.Logf("login attempt %d got no password prompt; trying again", attempt)
			continue
		}
		con.send(reset.Password + "\r")
		if got := con.expectAny([]string{"$ ", "Login incorrect"}, time.Minute); got == "$ " {
			t.Logf("console login with the reset password after %v (attempt %d)", time.Since(start).Round(time.Second), attempt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reset password was refused on the console %d times; it showed:\n%s", attempt, lastLines(con.seen.String(), 20))
		}
		t.Logf("login attempt %d refused; trying again", attempt)
	}
	con.send("echo rescue-$((6*7))\r")
	con.expect("rescue-42", 30*time.Second, false)
	con.send("exit\r")
	if strings.Contains(con.seen.String(), reset.Password) {
		t.Error("the console echoed the password")
	}

	if out := g.ssh(t, "hostname; sudo passwd -S debian | cut -d' ' -f2", 4*time.Minute); !strings.Contains(out, "e2e-web") || !strings.Contains(out, "P") {
		t.Errorf("ssh after the password reset: %q (want the host name and a usable password)", out)
	}
}

// consoleReader reads a console WebSocket in one goroutine (a read
// deadline would break the connection) and waits for what the guest prints.
type consoleReader struct {
	t    *testing.T
	ws   *websocket.Conn
	msgs chan []byte
	errc chan error
	seen strings.Builder
	from int // where the next expectation starts looking
}

func newConsoleReader(t *testing.T, ws *websocket.Conn) *consoleReader {
	c := &consoleReader{t: t, ws: ws, msgs: make(chan []byte, 64), errc: make(chan error, 1)}
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				c.errc <- err
				close(c.msgs)
				return
			}
			c.msgs <- msg
		}
	}()
	return c
}

func (c *consoleReader) send(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(s)); err != nil {
		c.t.Fatalf("type into the console: %v", err)
	}
}

// expect waits for want in what arrives after the last match; poke presses
// Enter every few seconds meanwhile, so getty prints its prompt again.
func (c *consoleReader) expect(want string, within time.Duration, poke bool) {
	c.t.Helper()
	if c.wait([]string{want}, within, poke) == "" {
		c.t.Fatalf("no %q on the console within %v; it showed:\n%s", want, within, lastLines(c.seen.String(), 20))
	}
}

// expectAny waits for the first of wants to arrive and returns it.
func (c *consoleReader) expectAny(wants []string, within time.Duration) string {
	c.t.Helper()
	got := c.wait(wants, within, false)
	if got == "" {
		c.t.Fatalf("none of %q on the console within %v; it showed:\n%s", wants, within, lastLines(c.seen.String(), 20))
	}
	return got
}

// wait returns the first of wants to arrive after the last match, or ""
// when none does within; poke presses Enter every few seconds meanwhile.
func (c *consoleReader) wait(wants []string, within time.Duration, poke bool) string {
	c.t.Helper()
	if poke {
		c.send("\r")
	}
	enter := time.NewTicker(3 * time.Second)
	defer enter.Stop()
	deadline := time.After(within)
	for {
		rest := c.seen.String()[c.from:]
		best, at := "", -1
		for _, w := range wants {
			if i := strings.Index(rest, w); i >= 0 && (at < 0 || i < at) {
				best, at = w, i
			}
		}
		if at >= 0 {
			c.from += at + len(best)
			return best
		}
		select {
		case msg, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("console closed: %v; it showed:\n%s", <-c.errc, lastLines(c.seen.String(), 20))
			}
			c.seen.Write(msg)
		case <-enter.C:
			if poke {
				c.send("\r")
			}
		case <-deadline:
			return ""
		}
	}
}

// waitAudit waits for an entry with action in the customer's activity log.
func waitAudit(t *testing.T, g *e2eGuest, action string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		var list struct {
			Items []struct {
				Action string `json:"action"`
				Detail string `json:"detail"`
			} `json:"items"`
		}
		g.cust.must("GET", "/audit?action="+action, nil, &list, 200)
		for _, e := range list.Items {
			if e.Action == action {
				t.Logf("audit: %s %s", e.Action, e.Detail)
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s entry in the activity log: %+v", action, list.Items)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
