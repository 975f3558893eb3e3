package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// addKeyRequest is a signed-in browser's SSH key form with the given token.
func addKeyRequest(t *testing.T, b *browser, token string, header map[string]string) *http.Request {
	req := newFormRequest("/ssh-keys", url.Values{"name": {"k"}, "public_key": {pubKey(t, "k")}, "_csrf": {token}})
	req.Host = "portal.example.com"
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

func TestCSRFTokenBoundToSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("Bound", "b@bound.example")
	tenant := func() string {
		u, _ := e.st.GetUserByEmail(t.Context(), "b@bound.example")
		return u.Tenant()
	}()
	keys := func() int {
		list, _, _ := e.st.ListSSHKeys(t.Context(), tenant, store.Page{Number: 1, PerPage: 10})
		return len(list)
	}
	// A cookie planted by another page of the site, with the token the
	// portal gives that cookie, does not match the session.
	planted := strings.Repeat("p", 43)
	b.cookies[csrfCookie] = planted
	for name, tok := range map[string]string{
		"planted cookie's token": e.srv.csrfToken(planted, ""),
		"the cookie itself":      planted,
		"another session's":      e.srv.csrfToken(planted, "0190aaaa-0000-7000-8000-000000000000"),
	} {
		if res := e.do(addKeyRequest(t, b, tok, nil)); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if keys() != 0 {
		t.Fatal("a refused form added a key")
	}
	if res := e.do(addKeyRequest(t, b, b.csrf(), nil)); res.StatusCode != http.StatusSeeOther || keys() != 1 {
		t.Fatalf("the session's own token: %d, %d keys", res.StatusCode, keys())
	}
}

func TestCSRFOriginChecked(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("Origins", "o@origins.example")
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"typed address", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusSeeOther},
		{"our Origin", map[string]string{"Origin": "http://PORTAL.example.com"}, http.StatusSeeOther},
		{"no headers (not a browser)", nil, http.StatusSeeOther},
		{"same-site port forward", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"other port Origin", map[string]string{"Origin": "http://portal.example.com:60001"}, http.StatusForbidden},
		{"other host Origin", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"null Origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"other Referer", map[string]string{"Referer": "http://portal.example.com:60001/x"}, http.StatusForbidden},
	} {
		res := e.do(addKeyRequest(t, b, b.csrf(), tc.header))
		if res.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.want)
		}
	}
}

func TestHostPrefixedCookiesOverHTTPS(t *testing.T) {
	e := newEnv(t)
	e.srv.cfg.SecureCookies = true
	b := e.browser()
	res, _ := b.get("/login")
	var names []string
	for _, c := range res.Cookies() {
		names = append(names, c.Name)
		if !c.Secure || c.Path != "/" || c.Domain != "" {
			t.Errorf("%s: Secure %v Path %q Domain %q", c.Name, c.Secure, c.Path, c.Domain)
		}
	}
	if len(names) != 1 || names[0] != "__Host-"+csrfCookie {
		t.Errorf("cookies over HTTPS: %v", names)
	}
	b.signup("Secure", "s@secure.example")
	if b.cookies["__Host-"+sessionCookie] == "" {
		t.Errorf("no __Host- session cookie: %v", b.cookies)
	}
	if res, _ := b.get("/dashboard"); res.StatusCode != http.StatusOK {
		t.Errorf("dashboard with __Host- cookies: %d", res.StatusCode)
	}
}

func TestLogoutEndsCopiedSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("Copy", "c@copy.example")
	copied := b.cookies[sessionCookie]
	thief := e.browser()
	thief.cookies[sessionCookie] = copied
	if res, _ := thief.get("/dashboard"); res.StatusCode != http.StatusOK {
		t.Fatalf("copied cookie before logout: %d", res.StatusCode)
	}
	b.post("/logout", nil)
	thief.cookies[sessionCookie] = copied
	if res, _ := thief.get("/dashboard"); res.StatusCode/100 != 3 {
		t.Errorf("copied cookie after logout: %d, want a redirect to /login", res.StatusCode)
	}

	// API session tokens end the same way.
	tok := e.customer("Apiary", "a@api.example")
	e.want(http.StatusOK, "GET", "/api/v1/account", tok, nil)
	e.want(http.StatusNoContent, "POST", "/api/v1/auth/logout", tok, nil)
	e.wantErr(http.StatusUnauthorized, "unauthenticated", "", "GET", "/api/v1/account", tok, nil)
}

func TestSignOutEverywhere(t *testing.T) {
	e := newEnv(t)
	laptop := e.browser()
	laptop.signup("Many", "m@many.example")
	phone := e.browser()
	phone.login("m@many.example", "correct horse battery")
	apiTok := e.want(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]string{"email": "m@many.example", "password": "correct horse battery"})["token"].(string)
	l := e.want(http.StatusOK, "GET", "/api/v1/auth/sessions", apiTok, nil)
	if n := len(l["sessions"].([]any)); n != 3 {
		t.Fatalf("sessions: %d, want 3: %v", n, l)
	}
	_, doc := laptop.get("/account")
	if n := doc.Find(`[data-testid=session-row]`).Length(); n != 3 || doc.Find(`[data-testid=session-current]`).Length() != 1 {
		t.Errorf("account page lists %d sessions", n)
	}
	res, _ := laptop.post("/account/sign-out-everywhere", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", res.StatusCode)
	}
	if res, _ := laptop.get("/dashboard"); res.StatusCode != http.StatusOK {
		t.Errorf("the session that signed out the others: %d", res.StatusCode)
	}
	if res, _ := phone.get("/dashboard"); res.StatusCode/100 != 3 {
		t.Errorf("another browser after sign-out-everywhere: %d", res.StatusCode)
	}
	e.wantErr(http.StatusUnauthorized, "unauthenticated", "", "GET", "/api/v1/account", apiTok, nil)
	if entries, _, err := e.st.ListAudit(t.Context(), store.AuditFilter{Action: "auth.sign_out_everywhere"}, store.Page{Number: 1, PerPage: 10}); err != nil || len(entries) != 1 {
		t.Errorf("audit: %d entries, %v", len(entries), err)
	}
}

func TestSharedSiteWarning(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		warn bool
	}{
		{Config{PublicURL: "http://127.0.0.1:3000", PublicAddress: "127.0.0.1", Zone: "cloud.internal"}, true},
		{Config{PublicURL: "https://203.0.113.5", PublicAddress: "203.0.113.5", Zone: "cloud.isp.example"}, true},
		{Config{PublicURL: "https://portal.cloud.isp.example", PublicAddress: "203.0.113.5", Zone: "cloud.isp.example"}, true},
		{Config{PublicURL: "https://portal.isp.example", PublicAddress: "203.0.113.5", Zone: "cloud.isp.example"}, false},
	} {
		if got := tc.cfg.sharedSite(); (got != "") != tc.warn {
			t.Errorf("%+v: %q", tc.cfg, got)
		}
	}
}
