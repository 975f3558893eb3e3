package portal

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	code, body := e.api("GET", "/healthz", "", nil)
	if code != http.StatusOK || body["status"] != "ok" || body["database"] != "sqlite" {
		t.Errorf("healthz: %d %v", code, body)
	}
	_ = e.st.Close()
	if code, body := e.api("GET", "/healthz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("healthz with the database closed: %d %v", code, body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.api("GET", "/healthz", "", nil)
	e.api("GET", "/api/v1/account", "", nil)
	res := e.do(httptest.NewRequest("GET", "/metrics", nil))
	raw, _ := io.ReadAll(res.Body)
	text := string(raw)
	for _, want := range []string{
		"# TYPE fibrix_http_requests_total counter",
		`fibrix_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`route="/api/v1/account",status="401"`,
		"fibrix_uptime_seconds ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
}

func TestRequestIDAndSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	req := httptest.NewRequest("GET", "/login", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	res := e.do(req)
	if got := res.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("request id echoed as %q", got)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if res.Header.Get(h) != want {
			t.Errorf("%s = %q", h, res.Header.Get(h))
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP: %q", res.Header.Get("Content-Security-Policy"))
	}
	req = httptest.NewRequest("GET", "/login", nil)
	req.Header.Set("X-Request-Id", "bad id\x01")
	if got := e.do(req).Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \x01") {
		t.Errorf("unsafe request id kept: %q", got)
	}
}

func TestNotFoundShapes(t *testing.T) {
	e := newEnv(t)
	code, body := e.api("GET", "/api/v1/nope", "", nil)
	errObj, _ := body["error"].(map[string]any)
	if code != http.StatusNotFound || errObj["code"] != "not_found" || errObj["message"] == "" {
		t.Errorf("api 404: %d %v", code, body)
	}
	b := e.browser()
	res, doc := b.get("/no-such-page")
	if res.StatusCode != http.StatusNotFound || !strings.Contains(doc.Find("title").Text(), "Not found") {
		t.Errorf("page 404: %d %q", res.StatusCode, doc.Find("title").Text())
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/static/vendor/htmx.min.js", "/static/vendor/pico.min.css", "/static/app.css"} {
		res := e.do(httptest.NewRequest("GET", path, nil))
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
	if res := e.do(httptest.NewRequest("GET", "/static/../go.mod", nil)); res.StatusCode == http.StatusOK {
		t.Error("static handler served a file outside its root")
	}
}

func TestProtectedPagesRedirectToLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/dashboard", "/vms", "/ssh-keys", "/account", "/admin/tenants"} {
		res, _ := b.get(path)
		if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: status %d, want a redirect", path, res.StatusCode)
			continue
		}
		if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("%s: redirected to %q", path, loc)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/vms/1":               "/vms/1",
		"//evil.example":       "/dashboard",
		"https://evil.example": "/dashboard",
		"/\\evil.example":      "/dashboard",
		"":                     "/dashboard",
		"/login?next=/x":       "/dashboard",
	} {
		if got := safeNext(in, false); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
