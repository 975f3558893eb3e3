package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

func TestStaffTwoFactorRequired(t *testing.T) {
	testStaffTwoFactorRequired(t, newEnv(t))
}

func TestStaffTwoFactorRequiredPostgres(t *testing.T) {
	testStaffTwoFactorRequired(t, newEnvOn(t, pgtest.DSN(t)))
}

func testStaffTwoFactorRequired(t *testing.T, e *env) {
	clk := &clock{t: time.Now()}
	e.srv.limiter.now = clk.now
	admin, operator, auditor := e.staff("admin"), e.staff("operator"), e.staff("auditor")
	customer := e.customer("Unbothered Ltd", "owner@unbothered.example")
	enrol := func(tok string) string {
		t.Helper()
		secret := e.want(http.StatusOK, "POST", "/api/v1/auth/two-factor/setup", tok, nil)["secret"].(string)
		e.want(http.StatusOK, "POST", "/api/v1/auth/two-factor/enable", tok, map[string]any{"code": code(t, secret, clk.now())})
		clk.add(time.Minute) // the next code is of a later step
		return secret
	}
	required := func() any {
		t.Helper()
		return e.want(http.StatusOK, "GET", "/api/v1/admin/security", admin, nil)["staff_two_factor_required"]
	}
	if required() != false {
		t.Fatal("required by default")
	}

	// Refusals change nothing.
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "staff_two_factor_required", "PUT", "/api/v1/admin/security", admin, map[string]any{})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "required", "PUT", "/api/v1/admin/security", admin, map[string]any{"staff_two_factor_required": true})
	e.wantErr(http.StatusForbidden, "forbidden", "", "PUT", "/api/v1/admin/security", operator, map[string]any{"staff_two_factor_required": true})
	e.wantErr(http.StatusForbidden, "forbidden", "", "PUT", "/api/v1/admin/security", auditor, map[string]any{"staff_two_factor_required": true})
	e.wantErr(http.StatusNotFound, "not_found", "", "PUT", "/api/v1/admin/security", customer, map[string]any{"staff_two_factor_required": true})
	if required() != false {
		t.Fatal("a refused change took effect")
	}

	adminSecret := enrol(admin)
	if got := e.want(http.StatusOK, "PUT", "/api/v1/admin/security", admin, map[string]any{"staff_two_factor_required": true}); got["staff_two_factor_required"] != true {
		t.Fatalf("require: %v", got)
	}

	// Staff without a second factor may enrol and nothing else, through the
	// API and in the browser; customers are not affected.
	e.wantErr(http.StatusForbidden, "two_factor_required", "", "GET", "/api/v1/admin/tenants", operator, nil)
	e.wantErr(http.StatusForbidden, "two_factor_required", "", "GET", "/api/v1/admin/security", auditor, nil)
	e.want(http.StatusOK, "GET", "/api/v1/admin/tenants", admin, nil)
	e.want(http.StatusOK, "GET", "/api/v1/vms", customer, nil)
	ob := e.browser()
	ob.cookies[sessionCookie] = operator
	for _, path := range []string{"/admin", "/admin/tenants", "/admin/users"} {
		if res, _ := ob.get(path); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
			t.Errorf("GET %s without a second factor: %d to %q, want 303 to /account", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if res, _ := ob.post("/admin/tenants/x/suspend", url.Values{"reason": {"x"}}); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Errorf("POST to the panel without a second factor: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, doc := ob.get("/account")
	if !strings.Contains(doc.Find(`[data-testid="two-factor-required"]`).Text(), "must sign in with two-factor") ||
		doc.Find(`[data-testid="two-factor-setup"]`).Length() != 1 {
		t.Fatalf("account page of staff without a second factor: %q", doc.Find(`[data-testid="two-factor-card"]`).Text())
	}
	enrol(operator)
	e.want(http.StatusOK, "GET", "/api/v1/admin/tenants", operator, nil)
	if res, _ := ob.get("/admin/tenants"); res.StatusCode != http.StatusOK {
		t.Errorf("panel after enrolling: %d", res.StatusCode)
	}
	// Staff keep the second factor while it is required: the card offers no
	// way off and the API refuses.
	_, doc = ob.get("/account")
	if doc.Find(`[data-testid="two-factor-kept"]`).Length() != 1 || doc.Find(`[data-testid="two-factor-disable-form"]`).Length() != 0 {
		t.Error("the account page offers turning the second factor off while staff must keep it")
	}
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/auth/two-factor/disable", operator,
		map[string]any{"password": "staff password 1", "code": "ABCDE-FGHIJ"})

	// The users page shows who has it and lets the admin lift the rule.
	ab := e.browser()
	ab.cookies[sessionCookie] = admin
	_, doc = ab.get("/admin/users")
	if s := doc.Find(`[data-testid="staff-two-factor-status"]`).Text(); s != "required" {
		t.Errorf("users page status %q", s)
	}
	if n := doc.Find(`[data-testid="admin-user-two-factor"]:contains("missing")`).Length(); n != 1 {
		t.Errorf("%d staff shown without a second factor, want 1 (the auditor)", n)
	}
	res, _ := ab.post("/admin/users/two-factor", url.Values{"required": {"false"}})
	if res.StatusCode != http.StatusSeeOther || required() != false {
		t.Fatalf("lift in the browser: %d, required=%v", res.StatusCode, required())
	}
	e.want(http.StatusOK, "GET", "/api/v1/admin/tenants", auditor, nil)

	// Without a second factor of their own, an admin's request to require
	// one is refused on the page, naming why.
	e.want(http.StatusNoContent, "POST", "/api/v1/auth/two-factor/disable", admin, map[string]any{"password": "staff password 1", "code": code(t, adminSecret, clk.now())})
	res, doc = ab.post("/admin/users/two-factor", url.Values{"required": {"true"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find(`[data-testid="staff-two-factor"]`).Text(), "your own account first") || required() != false {
		t.Errorf("require without own second factor in the browser: %d %q", res.StatusCode, doc.Find(`[data-testid="staff-two-factor"]`).Text())
	}
}
