package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	e.customer("Limits", "l@limits.example")
	for i := range loginPerAccount {
		code, _ := e.api("POST", "/api/v1/auth/login", "", map[string]string{"email": "l@limits.example", "password": "nope nope nope"})
		if code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	code, body := e.api("POST", "/api/v1/auth/login", "", map[string]string{"email": "l@limits.example", "password": "correct horse battery"})
	if code != http.StatusTooManyRequests || body["error"].(map[string]any)["code"] != "rate_limited" {
		t.Errorf("after %d failures: %d %v", loginPerAccount, code, body)
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
	e.srv.cfg.SessionTTL = -time.Hour // issue one that expired an hour ago
	tok, _, err := e.srv.issueSession(u)
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
