package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestSignupLoginLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("Acme", "owner@acme.example")
	if b.cookies[sessionCookie] == "" {
		t.Fatal("no session cookie after signup")
	}
	res, _ := b.post("/logout", nil)
	if res.StatusCode != http.StatusSeeOther || b.cookies[sessionCookie] != "" {
		t.Fatalf("logout: %d, cookie %q", res.StatusCode, b.cookies[sessionCookie])
	}
	res, doc := b.post("/login", url.Values{"email": {"owner@acme.example"}, "password": {"wrong password!"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(doc.Text(), "wrong email or password") {
		t.Errorf("bad password: %d", res.StatusCode)
	}
	b.login("OWNER@acme.example", "correct horse battery")
	res, _ = b.get("/")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/dashboard" {
		t.Errorf("home after login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestSessionCookieFlags(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	form := url.Values{"tenant": {"Flags"}, "email": {"f@flags.example"}, "password": {"correct horse battery"}, "password_confirm": {"correct horse battery"}, "_csrf": {b.csrf()}}
	req := newFormRequest("/signup", form)
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: b.cookies[csrfCookie]})
	res := e.do(req)
	var found bool
	for _, raw := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(raw, sessionCookie+"=") {
			found = true
			lower := strings.ToLower(raw)
			if !strings.Contains(lower, "httponly") || !strings.Contains(lower, "samesite=lax") {
				t.Errorf("session cookie flags: %s", raw)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie set")
	}
}

func TestCSRFRequired(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("Csrf", "c@csrf.example")
	for _, tc := range []struct{ name, token string }{{"missing", ""}, {"wrong", "x" + b.cookies[csrfCookie]}} {
		form := url.Values{"name": {"k"}, "public_key": {pubKey(t, "k")}}
		req := newFormRequest("/ssh-keys", form)
		if tc.token != "" {
			req.Header.Set("X-CSRF-Token", tc.token)
		}
		for k, v := range b.cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		if res := e.do(req); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s token: status %d, want 403", tc.name, res.StatusCode)
		}
	}
}

// serveReal serves the portal on a loopback listener and returns its URL.
func (e *env) serveReal() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.srv.Serve(ctx, ln) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// loginFrom posts to /api/v1/auth/login from the loopback address src.
func loginFrom(t *testing.T, base, src, email, password string) (int, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, err := c.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login from %s: %v", src, err)
	}
	defer res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After")
}

// TestLoginThrottleCannotLockOutOwner: failures slow down the address
// that made them, never the owner signing in from elsewhere.
func TestLoginThrottleCannotLockOutOwner(t *testing.T) {
	e := newEnv(t)
	e.customer("Victim", "v@victim.example")
	clock := time.Now()
	e.srv.limiter.now = func() time.Time { return clock }
	base := e.serveReal()
	const right, wrong = "correct horse battery", "guess guess guess"
	attacker, owner := "127.0.0.2", "127.0.0.3"

	for i := range loginFreeFailures {
		if code, _ := loginFrom(t, base, attacker, "v@victim.example", wrong); code != http.StatusUnauthorized {
			t.Fatalf("free failure %d: %d", i, code)
		}
	}
	code, retry := loginFrom(t, base, attacker, "v@victim.example", right)
	if code != http.StatusTooManyRequests || retry != "5" {
		t.Errorf("attacker after %d failures, right password: %d Retry-After %q, want 429 after 5 s", loginFreeFailures, code, retry)
	}
	if code, _ := loginFrom(t, base, owner, "v@victim.example", right); code != http.StatusOK {
		t.Errorf("owner from an address that never failed: %d, want 200", code)
	}
	// The delay doubles with each failure after it ends.
	clock = clock.Add(6 * time.Second)
	if code, _ := loginFrom(t, base, attacker, "V@victim.example", wrong); code != http.StatusUnauthorized {
		t.Errorf("after the delay: %d, want another try", code)
	}
	if code, retry := loginFrom(t, base, attacker, "v@victim.example", wrong); code != http.StatusTooManyRequests || retry != "10" {
		t.Errorf("second delay: %d Retry-After %q, want 10", code, retry)
	}

	// Many addresses against one account: the account refuses the addresses
	// that failed it, not the owner.
	failed := loginFreeFailures + 1 // the attacker's so far
	for a := 1; failed < loginPerAccount; a++ {
		src := fmt.Sprintf("127.0.1.%d", a)
		for i := 0; i < loginFreeFailures && failed < loginPerAccount; i++ {
			if code, _ := loginFrom(t, base, src, "v@victim.example", wrong); code != http.StatusUnauthorized {
				t.Fatalf("spray %d from %s: %d", failed, src, code)
			}
			failed++
		}
	}
	clock = clock.Add(10 * time.Minute) // the pair delays are over, the window is not
	if code, _ := loginFrom(t, base, "127.0.1.1", "v@victim.example", right); code != http.StatusTooManyRequests {
		t.Errorf("a spraying address with the right password: %d, want 429", code)
	}
	if code, _ := loginFrom(t, base, owner, "v@victim.example", right); code != http.StatusOK {
		t.Errorf("owner while the account is sprayed: %d, want 200", code)
	}

	// One address trying many accounts is stopped as a whole.
	sprayer := "127.0.2.1"
	for i := range loginPerIP {
		if code, _ := loginFrom(t, base, sprayer, fmt.Sprintf("u%d@nowhere.example", i), wrong); code != http.StatusUnauthorized {
			t.Fatalf("account %d: %d", i, code)
		}
	}
	if code, _ := loginFrom(t, base, sprayer, "v@victim.example", right); code != http.StatusTooManyRequests {
		t.Errorf("address over its budget: %d, want 429", code)
	}
	if code, _ := loginFrom(t, base, owner, "v@victim.example", right); code != http.StatusOK {
		t.Errorf("owner after another address was stopped: %d, want 200", code)
	}
	clock = clock.Add(loginWindow + time.Second)
	if code, _ := loginFrom(t, base, "127.0.1.1", "v@victim.example", right); code != http.StatusOK {
		t.Errorf("after the window: %d, want 200", code)
	}
}

func TestLoginDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 2: 0, 3: 5 * time.Second, 4: 10 * time.Second, 5: 20 * time.Second, 11: loginWindow, 50: loginWindow} {
		if got := loginDelay(n); got != want {
			t.Errorf("loginDelay(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestJWTRejectsOtherAlgorithmsAndExpiry(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Jwt", "j@jwt.example")
	if code, _ := e.api("GET", "/api/v1/account", tok, nil); code != http.StatusOK {
		t.Fatalf("valid token: %d", code)
	}
	parts := strings.Split(tok, ".")
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	for name, bad := range map[string]string{"alg none": none, "tampered": parts[0] + "." + parts[1] + "x." + parts[2], "garbage": "abc"} {
		if code, body := e.api("GET", "/api/v1/account", bad, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v", name, code, body)
		}
	}
}

func newFormRequest(path string, form url.Values) *http.Request {
	req, _ := http.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestExpiredSessionRefused(t *testing.T) {
	e := newEnv(t)
	e.customer("Expiry", "x@expiry.example")
	u, err := e.st.GetUserByEmail(t.Context(), "x@expiry.example")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := e.st.OpenSession(t.Context(), u.ID, store.SessionAPI, "", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A token for a live session that itself expired an hour ago.
	tok, err := e.srv.signSession(u, sess.ID, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.api("GET", "/api/v1/account", tok, nil); code != http.StatusUnauthorized {
		t.Errorf("expired token: %d %v", code, body)
	}
	b := e.browser()
	b.cookies[sessionCookie] = tok
	if res, _ := b.get("/dashboard"); res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
		t.Errorf("expired cookie on a page: %d, want a redirect to /login", res.StatusCode)
	}
	if b.cookies[sessionCookie] != "" {
		t.Error("expired session cookie was not cleared")
	}
}
