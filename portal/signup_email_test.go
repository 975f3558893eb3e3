package portal

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/portal/mailer/mailtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

var confirmLink = regexp.MustCompile(`http://127\.0\.0\.1:8080/signup/confirm/(fsu_[a-z0-9]+)`)

// TestSignUpByEmail runs the portal with a real SMTP relay: a sign-up
// answers the same for a new and a known email, by form and by API; the new
// address gets the link that finishes it, the known one a notice; nothing
// exists before the link is followed, and a link works once.
func TestSignUpByEmail(t *testing.T) {
	relay := mailtest.Start(t, mailtest.Options{})
	e := newEnv(t)
	e.customer("Globex", "g@globex.example")
	m, err := mailer.Parse("smtp://"+relay.Addr, "Fibrix Cloud <noreply@cloud.example>")
	if err != nil {
		t.Fatal(err)
	}
	e.srv.cfg.Mailer = m
	ctx := context.Background()
	tenants := func() int {
		t.Helper()
		_, n, err := e.st.ListTenants(ctx, "", store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The form: the same page for a new and a known email.
	form := func(tenant, email string) (int, string) {
		t.Helper()
		b := e.browser()
		res, doc := b.post("/signup", url.Values{"tenant": {tenant}, "email": {email},
			"password": {"correct horse battery"}, "password_confirm": {"correct horse battery"}})
		if b.cookies[e.srv.cookieName(sessionCookie)] != "" {
			t.Errorf("signup of %s signed the browser in before the email was confirmed", email)
		}
		main, _ := doc.Find("main").Html()
		return res.StatusCode, strings.ReplaceAll(main, email, "EMAIL")
	}
	newCode, newPage := form("Acme", "ops@acme.example")
	oldCode, oldPage := form("Acme Again", "g@globex.example")
	if newCode != http.StatusOK || oldCode != newCode || newPage != oldPage || !strings.Contains(newPage, "Check your email") {
		t.Errorf("new email %d, known email %d; pages differ or say nothing:\n%s\n---\n%s", newCode, oldCode, newPage, oldPage)
	}
	if n := tenants(); n != 1 {
		t.Errorf("%d tenants before any link was followed, want 1", n)
	}

	// The API: the same answer too.
	code, body := e.api("POST", "/api/v1/auth/signup", "", map[string]string{"tenant": "Initech", "email": "boss@initech.example", "password": "correct horse battery"})
	code2, body2 := e.api("POST", "/api/v1/auth/signup", "", map[string]string{"tenant": "Initech Two", "email": "g@globex.example", "password": "correct horse battery"})
	if code != http.StatusAccepted || code2 != code || body["status"] != "confirmation_sent" ||
		strings.ReplaceAll(body["message"].(string), "boss@initech.example", "E") != strings.ReplaceAll(body2["message"].(string), "g@globex.example", "E") {
		t.Errorf("API: new %d %v, known %d %v", code, body, code2, body2)
	}
	// Refusals do not depend on the email either, and send nothing.
	for _, email := range []string{"new@acme.example", "g@globex.example"} {
		code, body := e.api("POST", "/api/v1/auth/signup", "", map[string]string{"tenant": "Hooli", "email": email, "password": "password1234"})
		if code != http.StatusUnprocessableEntity || body["error"].(map[string]any)["field"] != "password" {
			t.Errorf("weak password with %s: %d %v", email, code, body)
		}
	}

	// What arrived: a link for each new address, notices for the known one.
	known := relay.Wait(t, "g@globex.example", 2)
	for _, msg := range known {
		if confirmLink.MatchString(msg.Text) || !strings.Contains(msg.Text, "already has one") || !strings.Contains(msg.Text, "/login") {
			t.Errorf("notice to the known address: %q", msg.Text)
		}
	}
	if n := len(relay.Messages(t)); n != 4 {
		t.Errorf("%d messages sent, want 4 (refused sign-ups send none)", n)
	}
	audit, _, err := e.st.ListAudit(ctx, store.AuditFilter{Action: "auth.signup_existing"}, store.Page{})
	if err != nil || len(audit) != 2 {
		t.Errorf("signup_existing audit entries: %d %v", len(audit), err)
	}
	link := func(to string) string {
		t.Helper()
		msgs := relay.Wait(t, to, 1)
		mm := confirmLink.FindStringSubmatch(msgs[0].Text)
		if mm == nil || msgs[0].Subject != "Finish creating your Fibrix Cloud account" {
			t.Fatalf("no link in the message to %s: %q %q", to, msgs[0].Subject, msgs[0].Text)
		}
		return mm[1]
	}

	// Following the link in a browser: a page, then one POST creates.
	tok := link("ops@acme.example")
	b := e.browser()
	res, doc := b.get("/signup/confirm/" + tok)
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid="signup-confirm-tenant"]`).Text() != "Acme" {
		t.Fatalf("confirm page: %d %s", res.StatusCode, doc.Find("main").Text())
	}
	if n := tenants(); n != 1 {
		t.Errorf("opening the link created something: %d tenants", n)
	}
	res, _ = b.post("/signup/confirm/"+tok, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/dashboard" {
		t.Fatalf("confirm: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := b.get("/dashboard"); res.StatusCode != http.StatusOK {
		t.Errorf("dashboard after confirming: %d", res.StatusCode)
	}
	if res, _ := e.browser().get("/signup/confirm/" + tok); res.StatusCode != http.StatusNotFound {
		t.Errorf("a used link: %d, want 404", res.StatusCode)
	}
	if res, _ := e.browser().post("/signup/confirm/"+tok, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("a used link, posted: %d, want 404", res.StatusCode)
	}

	// By API, the token from the link.
	tok = link("boss@initech.example")
	code, body = e.api("POST", "/api/v1/auth/signup/confirm", "", map[string]string{"token": tok})
	if code != http.StatusCreated || body["token"] == nil {
		t.Fatalf("API confirm: %d %v", code, body)
	}
	if code, acct := e.api("GET", "/api/v1/account", body["token"].(string), nil); code != http.StatusOK || acct["tenant"].(map[string]any)["name"] != "Initech" {
		t.Errorf("account after API confirm: %d %v", code, acct)
	}
	if code, body := e.api("POST", "/api/v1/auth/signup/confirm", "", map[string]string{"token": tok}); code != http.StatusNotFound {
		t.Errorf("API confirm twice: %d %v", code, body)
	}
	if code, _ := e.api("POST", "/api/v1/auth/signup/confirm", "", map[string]string{"token": " "}); code != http.StatusUnprocessableEntity {
		t.Errorf("API confirm without a token: %d", code)
	}
	if n := tenants(); n != 3 {
		t.Errorf("%d tenants, want 3", n)
	}
}
