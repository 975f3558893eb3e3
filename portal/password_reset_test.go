package portal

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/portal/mailer/mailtest"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

var resetLink = regexp.MustCompile(`http://127\.0\.0\.1:8080/password/reset/(pwr_[a-z0-9]+)`)

const newPassword = "staple battery horse correct"

// TestPasswordResetByEmail runs the reset through a real SMTP relay: the
// answer reads the same for any email, the link in the message changes the
// password once and ends every session.
func TestPasswordResetByEmail(t *testing.T) {
	relay := mailtest.Start(t, mailtest.Options{})
	e := newEnv(t)
	const email = "forgetful@reset.example"
	session := e.customer("Forgetful Ltd", email)
	m, err := mailer.Parse("smtp://"+relay.Addr, "Fibrix Cloud <noreply@cloud.example>")
	if err != nil {
		t.Fatal(err)
	}
	e.srv.cfg.Mailer = m

	ask := func(address string) string {
		t.Helper()
		res, doc := e.browser().post("/password/forgot", url.Values{"email": {address}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("forgot %s: %d", address, res.StatusCode)
		}
		return strings.ReplaceAll(doc.Find(`[data-testid="reset-sent"]`).Text(), address, "EMAIL")
	}
	known, unknown := ask(email), ask("nobody@reset.example")
	if known == "" || known != unknown || !strings.Contains(known, "we sent a link") {
		t.Fatalf("answers differ or say nothing: %q / %q", known, unknown)
	}
	if res, doc := e.browser().post("/password/forgot", url.Values{"email": {"not an email"}}); res.StatusCode != http.StatusUnprocessableEntity ||
		doc.Find(`#email[aria-invalid="true"]`).Length() != 1 {
		t.Errorf("malformed email: %d", res.StatusCode)
	}
	msgs := relay.Wait(t, email, 1)
	match := resetLink.FindStringSubmatch(msgs[0].Text)
	if match == nil || msgs[0].Subject != "Reset your Fibrix Cloud password" {
		t.Fatalf("message: %q %q", msgs[0].Subject, msgs[0].Text)
	}
	for _, got := range relay.Messages(t) {
		if strings.Contains(got.To, "nobody@") {
			t.Errorf("a message went to an address without an account")
		}
	}
	token := match[1]
	path := "/password/reset/" + token

	b := e.browser()
	res, doc := b.get(path)
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid="reset-email"]`).Text() != email {
		t.Fatalf("reset form: %d %q", res.StatusCode, doc.Find(`[data-testid="reset-email"]`).Text())
	}
	for _, c := range []struct {
		name, password, confirm, field string
	}{
		{"mismatch", newPassword, newPassword + "x", "password_confirm"},
		{"weak", "password1", "password1", "password"},
	} {
		res, doc := b.post(path, url.Values{"password": {c.password}, "password_confirm": {c.confirm}})
		if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`#`+c.field+`[aria-invalid="true"]`).Length() != 1 {
			t.Errorf("%s: %d, want 422 naming %s", c.name, res.StatusCode, c.field)
		}
	}
	if code, _ := e.api("GET", "/api/v1/account", session, nil); code != http.StatusOK {
		t.Fatalf("a refused reset ended the session: %d", code)
	}
	res, _ = b.post(path, url.Values{"password": {newPassword}, "password_confirm": {newPassword}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("reset: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if code, _ := e.api("GET", "/api/v1/account", session, nil); code != http.StatusUnauthorized {
		t.Errorf("the session from before the reset still works: %d", code)
	}
	if code, _ := e.api("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "correct horse battery"}); code != http.StatusUnauthorized {
		t.Errorf("the old password still signs in: %d", code)
	}
	e.browser().login(email, newPassword)
	// Once only.
	res, doc = e.browser().get(path)
	if res.StatusCode != http.StatusNotFound || doc.Find(`[data-testid="reset-form"]`).Length() != 0 || doc.Find(`[data-testid="reset-again"]`).Length() != 1 {
		t.Errorf("used link: %d", res.StatusCode)
	}
	e.wantErr(http.StatusNotFound, "not_found", "token", "POST", "/api/v1/auth/password/reset", "", map[string]any{"token": token, "password": "another good passphrase"})

	// The API asks the same way.
	body := e.want(http.StatusAccepted, "POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email})
	if !strings.Contains(body["message"].(string), "we sent a link") {
		t.Errorf("API answer: %v", body)
	}
	relay.Wait(t, email, 2)
}

func TestPasswordResetByStaff(t *testing.T) {
	testPasswordResetByStaff(t, newEnv(t))
}

func TestPasswordResetByStaffPostgres(t *testing.T) {
	testPasswordResetByStaff(t, newEnvOn(t, pgtest.DSN(t)))
}

// testPasswordResetByStaff: without email, requests wait in the staff
// panel, where staff make the link and hand it over.
func testPasswordResetByStaff(t *testing.T, e *env) {
	const email = "lost@staffreset.example"
	customer := e.customer("Lost Keys Ltd", email)
	_, customerID := e.account(customer)
	admin, operator, auditor := e.staff("admin"), e.staff("operator"), e.staff("auditor")
	adminID := obj(e.want(http.StatusOK, "GET", "/api/v1/account", admin, nil)["user"])["id"].(string)

	body := e.want(http.StatusAccepted, "POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": email})
	if !strings.Contains(body["message"].(string), "our staff have your request") {
		t.Fatalf("answer without email: %v", body)
	}
	e.want(http.StatusAccepted, "POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "ghost@staffreset.example"})
	reqs := e.want(http.StatusOK, "GET", "/api/v1/admin/password-reset-requests", auditor, nil)
	items := reqs["items"].([]any)
	if len(items) != 1 || obj(items[0])["email"] != email {
		t.Fatalf("requests: %v", reqs)
	}

	ob := e.browser()
	ob.cookies[sessionCookie] = operator
	_, doc := ob.get("/admin/users")
	if n := doc.Find(`[data-testid="reset-request"]`).Length(); n != 1 {
		t.Fatalf("%d requests on the users page", n)
	}
	// Auditors read only; operators cannot reset an admin; no such user is 404.
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/admin/users/"+customerID+"/password-reset", auditor, nil)
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/admin/users/"+adminID+"/password-reset", operator, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "POST", "/api/v1/admin/users/00000000-0000-4000-8000-000000000000/password-reset", operator, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "POST", "/api/v1/admin/users/"+customerID+"/password-reset", customer, nil)

	res, doc := ob.post("/admin/users/"+customerID+"/password-reset", url.Values{})
	pageLink := doc.Find(`[data-testid="reset-link-url"]`).Text()
	if res.StatusCode != http.StatusOK || !resetLink.MatchString(pageLink) || doc.Find(`[data-testid="reset-request"]`).Length() != 0 ||
		res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("link on the page: %d %q", res.StatusCode, pageLink)
	}
	// A newer link from the API replaces the one on the page.
	link := e.want(http.StatusCreated, "POST", "/api/v1/admin/users/"+customerID+"/password-reset", operator, nil)
	apiLink, _ := link["url"].(string)
	if link["email"] != email || !resetLink.MatchString(apiLink) || apiLink == pageLink {
		t.Fatalf("API link: %v", link)
	}
	old := resetLink.FindStringSubmatch(pageLink)[1]
	e.wantErr(http.StatusNotFound, "not_found", "token", "POST", "/api/v1/auth/password/reset", "", map[string]any{"token": old, "password": newPassword})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "token", "POST", "/api/v1/auth/password/reset", "", map[string]any{"password": newPassword})
	token := resetLink.FindStringSubmatch(apiLink)[1]
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "password", "POST", "/api/v1/auth/password/reset", "", map[string]any{"token": token, "password": "short"})
	e.want(http.StatusNoContent, "POST", "/api/v1/auth/password/reset", "", map[string]any{"token": token, "password": newPassword})
	e.want(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": newPassword})

	// An admin may reset staff accounts too.
	e.want(http.StatusCreated, "POST", "/api/v1/admin/users/"+adminID+"/password-reset", admin, nil)

	// Requests are limited per address.
	var last int
	for range resetPerIP + 1 {
		last, _ = e.api("POST", "/api/v1/auth/password/forgot", "", map[string]any{"email": "flood@staffreset.example"})
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("request %d from one address: %d, want 429", resetPerIP+1, last)
	}
}
