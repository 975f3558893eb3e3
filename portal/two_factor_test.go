package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/portal/otp"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// clock is a settable time for the sign-in limits and code checks.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := otp.Code(secret, otp.Step(at))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := newRecoveryCodes()
	if len(codes) != recoveryCodeCount || len(hashes) != recoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	for i, c := range codes {
		if n := normalRecoveryCode(strings.ToUpper(c)); n == "" || hashRecoveryCode(n) != hashes[i] {
			t.Errorf("code %s does not match its hash", c)
		}
	}
	for _, bad := range []string{"", "abc", "abcde-fghi1", "abcdefghijk"} {
		if normalRecoveryCode(bad) != "" {
			t.Errorf("%q taken for a recovery code", bad)
		}
	}
}

func TestTwoFactorAPI(t *testing.T) {
	e := newEnv(t)
	testTwoFactorAPI(t, e)
}

func TestTwoFactorAPIPostgres(t *testing.T) {
	testTwoFactorAPI(t, newEnvOn(t, pgtest.DSN(t)))
}

func testTwoFactorAPI(t *testing.T, e *env) {
	clk := &clock{t: time.Now()}
	e.srv.limiter.now = clk.now
	const email, password = "otp@twofactor.example", "correct horse battery"
	tok := e.customer("Two Factor Ltd", email)
	other := e.customer("Other Factor Ltd", "other@twofactor.example")
	login := func(body map[string]any) (int, map[string]any) {
		body["email"], body["password"] = email, password
		return e.api("POST", "/api/v1/auth/login", "", body)
	}

	// An API token cannot change how its user signs in.
	apiTok := e.apiToken(tok, "write")
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/auth/two-factor/setup", apiTok, nil)
	// Nothing to confirm before a setup.
	e.wantErr(http.StatusConflict, "conflict", "", "POST", "/api/v1/auth/two-factor/enable", tok, map[string]any{"code": "123456"})

	setup := e.want(http.StatusOK, "POST", "/api/v1/auth/two-factor/setup", tok, nil)
	secret := setup["secret"].(string)
	if u, err := url.Parse(setup["otpauth_url"].(string)); err != nil || u.Query().Get("secret") != secret {
		t.Fatalf("otpauth URL %v for secret %s", setup["otpauth_url"], secret)
	}
	// The secret is sealed at rest.
	if stored := mustUser(t, e, email).TOTPSecret; stored == "" || strings.Contains(stored, secret) {
		t.Errorf("stored secret %q holds the secret in the clear", stored)
	}
	// Setting up again replaces the waiting secret; the first no longer counts.
	first := secret
	secret = e.want(http.StatusOK, "POST", "/api/v1/auth/two-factor/setup", tok, nil)["secret"].(string)
	if secret == first {
		t.Fatal("setting up again gave the same secret")
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "code", "POST", "/api/v1/auth/two-factor/enable", tok, map[string]any{"code": code(t, first, clk.now())})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "code", "POST", "/api/v1/auth/two-factor/enable", tok, map[string]any{"code": "nope"})
	if user := obj(e.want(http.StatusOK, "GET", "/api/v1/account", tok, nil)["user"]); user["two_factor"] != false {
		t.Fatalf("two-factor on before a code was confirmed: %v", user)
	}
	// Still off: signing in needs no code.
	if status, res := login(map[string]any{}); status != http.StatusOK {
		t.Fatalf("login before two-factor: %d %v", status, res)
	}

	enabled := e.want(http.StatusOK, "POST", "/api/v1/auth/two-factor/enable", tok, map[string]any{"code": code(t, secret, clk.now())})
	recovery := enabled["recovery_codes"].([]any)
	if len(recovery) != recoveryCodeCount {
		t.Fatalf("recovery codes: %v", enabled)
	}
	if user := obj(e.want(http.StatusOK, "GET", "/api/v1/account", tok, nil)["user"]); user["two_factor"] != true {
		t.Fatalf("account after enabling: %v", user)
	}
	e.wantErr(http.StatusConflict, "conflict", "", "POST", "/api/v1/auth/two-factor/setup", tok, nil)
	e.wantErr(http.StatusConflict, "conflict", "", "POST", "/api/v1/auth/two-factor/enable", tok, map[string]any{"code": code(t, secret, clk.now())})
	// The other tenant's user is untouched.
	if user := obj(e.want(http.StatusOK, "GET", "/api/v1/account", other, nil)["user"]); user["two_factor"] != false {
		t.Errorf("another user has two-factor on: %v", user)
	}

	// Signing in now needs the code; the code that confirmed the app was
	// used and does not work again.
	for _, c := range []struct {
		name, code, want string
	}{{"no code", "", "two_factor_required"}, {"wrong code", "000000", "invalid_code"}, {"the spent code", code(t, secret, clk.now()), "invalid_code"}} {
		status, res := login(map[string]any{"code": c.code})
		if got, field := apiErr(res); status != http.StatusUnauthorized || got != c.want || field != "code" {
			t.Errorf("%s: %d %v, want 401 %s", c.name, status, res, c.want)
		}
	}
	// The wrong password still fails first, whatever the code.
	if status, res := e.api("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "wrong password!", "code": code(t, secret, clk.now())}); status != http.StatusUnauthorized {
		t.Errorf("wrong password with a right code: %d %v", status, res)
	}
	clk.add(5 * time.Minute)
	clk.add(30 * time.Second)
	status, res := login(map[string]any{"code": code(t, secret, clk.now())})
	if status != http.StatusOK || res["token"] == nil {
		t.Fatalf("login with the current code: %d %v", status, res)
	}
	// The same code a second time, as a replay: refused.
	if status, res := login(map[string]any{"code": code(t, secret, clk.now())}); status != http.StatusUnauthorized {
		t.Errorf("the code replayed: %d %v", status, res)
	}
	// A recovery code works once, typed in capitals.
	rc := strings.ToUpper(recovery[0].(string))
	if status, res := login(map[string]any{"code": rc}); status != http.StatusOK {
		t.Errorf("login with a recovery code: %d %v", status, res)
	}
	if status, res := login(map[string]any{"code": rc}); status != http.StatusUnauthorized {
		t.Errorf("a recovery code twice: %d %v", status, res)
	}

	// Guessing codes gets slower, as guessing passwords does.
	clk.add(time.Hour)
	var limited map[string]any
	for range 6 {
		status, res := login(map[string]any{"code": "999999"})
		if status == http.StatusTooManyRequests {
			limited = res
			break
		}
	}
	if c, _ := apiErr(limited); c != "rate_limited" {
		t.Errorf("guessing codes was never slowed: %v", limited)
	}
	clk.add(time.Hour)

	// New recovery codes replace the old.
	clk.add(30 * time.Second)
	renewed := e.want(http.StatusOK, "POST", "/api/v1/auth/two-factor/recovery-codes", tok, map[string]any{"code": code(t, secret, clk.now())})["recovery_codes"].([]any)
	if len(renewed) != recoveryCodeCount {
		t.Fatalf("renewed codes: %v", renewed)
	}
	if status, _ := login(map[string]any{"code": recovery[1].(string)}); status != http.StatusUnauthorized {
		t.Errorf("an old recovery code after renewing: %d", status)
	}

	// Turning it off needs the password and a code; a refusal changes nothing.
	clk.add(30 * time.Second)
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "password", "POST", "/api/v1/auth/two-factor/disable", tok, map[string]any{"password": "wrong", "code": code(t, secret, clk.now())})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "code", "POST", "/api/v1/auth/two-factor/disable", tok, map[string]any{"password": password, "code": "111111"})
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/auth/two-factor/disable", apiTok, map[string]any{"password": password, "code": code(t, secret, clk.now())})
	if user := obj(e.want(http.StatusOK, "GET", "/api/v1/account", tok, nil)["user"]); user["two_factor"] != true {
		t.Fatalf("a refused disable turned two-factor off: %v", user)
	}
	clk.add(time.Hour)
	e.want(http.StatusNoContent, "POST", "/api/v1/auth/two-factor/disable", tok, map[string]any{"password": password, "code": renewed[0].(string)})
	if status, res := login(map[string]any{}); status != http.StatusOK {
		t.Errorf("login after turning two-factor off: %d %v", status, res)
	}
	if left, err := e.st.RecoveryCodesLeft(context.Background(), mustUser(t, e, email).ID); err != nil || left != 0 {
		t.Errorf("%d recovery codes left after turning two-factor off (%v)", left, err)
	}
	e.wantErr(http.StatusConflict, "conflict", "", "POST", "/api/v1/auth/two-factor/disable", tok, map[string]any{"password": password, "code": "123456"})
}

func TestTwoFactorWeb(t *testing.T) {
	e := newEnv(t)
	clk := &clock{t: time.Now()}
	e.srv.limiter.now = clk.now
	const email = "web@twofactor.example"
	b := e.browser()
	b.signup("Web Factor", email)

	_, doc := b.get("/account")
	if s := doc.Find(`[data-testid="two-factor-status"]`).Text(); s != "off" {
		t.Fatalf("two-factor status %q", s)
	}
	res, doc := b.post("/account/two-factor", url.Values{})
	if res.StatusCode != http.StatusOK || doc.Find("svg.qr path").AttrOr("d", "") == "" {
		t.Fatalf("setup page: %d, no QR code", res.StatusCode)
	}
	secret := strings.ReplaceAll(doc.Find(`[data-testid="two-factor-secret"]`).Text(), " ", "")
	res, doc = b.post("/account/two-factor/enable", url.Values{"code": {"000000"}})
	if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`#code[aria-invalid="true"]`).Length() != 1 || doc.Find("svg.qr").Length() != 1 {
		t.Fatalf("a wrong code: %d, want the setup page again with the field marked", res.StatusCode)
	}
	res, doc = b.post("/account/two-factor/enable", url.Values{"code": {code(t, secret, clk.now())}})
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid="recovery-code"]`).Length() != recoveryCodeCount {
		t.Fatalf("enable: %d, %d recovery codes shown", res.StatusCode, doc.Find(`[data-testid="recovery-code"]`).Length())
	}
	recovery := doc.Find(`[data-testid="recovery-code"]`).First().Text()
	_, doc = b.get("/account")
	if s := doc.Find(`[data-testid="two-factor-status"]`).Text(); s != "on" || !strings.Contains(doc.Find(`[data-testid="recovery-left"]`).Text(), "10 recovery codes") {
		t.Errorf("account after enabling: %q %q", s, doc.Find(`[data-testid="recovery-left"]`).Text())
	}

	// A new browser: the password leads to the code page, not in.
	nb := e.browser()
	res, _ = nb.post("/login", url.Values{"email": {email}, "password": {"correct horse battery"}, "next": {"/ssh-keys"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login/code") {
		t.Fatalf("password step: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := nb.get("/dashboard"); res.StatusCode == http.StatusOK {
		t.Fatal("the password alone signed in")
	}
	res, doc = nb.get("/login/code?next=/ssh-keys")
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid="login-code-form"]`).Length() != 1 {
		t.Fatalf("code page: %d", res.StatusCode)
	}
	res, doc = nb.post("/login/code", url.Values{"code": {"123456"}, "next": {"/ssh-keys"}})
	if res.StatusCode != http.StatusUnauthorized || doc.Find(`#code[aria-invalid="true"]`).Length() != 1 {
		t.Errorf("a wrong code: %d", res.StatusCode)
	}
	res, _ = nb.post("/login/code", url.Values{"code": {recovery}, "next": {"/ssh-keys"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ssh-keys" {
		t.Fatalf("recovery code: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := nb.get("/dashboard"); res.StatusCode != http.StatusOK {
		t.Errorf("signed in, the dashboard answers %d", res.StatusCode)
	}

	// The code page without a password step, or after it expired, sends
	// back to the password.
	for _, c := range []struct {
		name string
		prep func(*browser)
	}{
		{"no password step", func(*browser) {}},
		{"expired", func(x *browser) {
			x.post("/login", url.Values{"email": {email}, "password": {"correct horse battery"}})
			clk.add(twoFactorTTL + time.Minute)
			tok, _, err := e.srv.signTwoFactor(mustUser(t, e, email), time.Now().Add(-twoFactorTTL-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			x.cookies[e.srv.cookieName(twoFactorCookie)] = tok
		}},
	} {
		x := e.browser()
		c.prep(x)
		res, _ := x.post("/login/code", url.Values{"code": {code(t, secret, clk.now())}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
			t.Errorf("%s: %d to %q", c.name, res.StatusCode, res.Header.Get("Location"))
		}
	}
}
