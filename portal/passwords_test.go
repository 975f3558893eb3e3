package portal

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestWeakPasswords(t *testing.T) {
	for _, pw := range []string{
		"1234567890", "0987654321", "passwordpassword", "Password2024!", "qwertyuiop", "QWERTYUIOP1",
		"aaaaaaaaaaaa", "abcabcabcabc", "iloveyou12", "1q2w3e4r5t", "zyxwvutsrqpo", "welcome123",
		"owner@acme.example", "acmewebshop1",
	} {
		if weakPassword(pw, "owner@acme.example", "owner", "acmewebshop") == "" {
			t.Errorf("%q accepted", pw)
		}
	}
	for _, pw := range []string{"correct horse battery", "Tr0ub4dor&3xyz", "7f#kL9!pQz2m", "password manager rocks"} {
		if why := weakPassword(pw, "owner@acme.example", "owner", "acme"); why != "" {
			t.Errorf("%q refused: %s", pw, why)
		}
	}
}

func TestSignupRefusesCommonPassword(t *testing.T) {
	e := newEnv(t)
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "password", "POST", "/api/v1/auth/signup", "",
		map[string]string{"tenant": "Weak", "email": "w@weak.example", "password": "1234567890"})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "password", "POST", "/api/v1/auth/signup", "",
		map[string]string{"tenant": "Weak", "email": "w@weak.example", "password": "passwordpassword"})
	if _, err := e.st.GetUserByEmail(t.Context(), "w@weak.example"); err == nil {
		t.Error("a refused sign-up created the account")
	}
}

func TestSignupForExistingEmailIsNoted(t *testing.T) {
	e := newEnv(t)
	e.customer("First", "f@first.example")
	_, body := e.api("POST", "/api/v1/auth/signup", "", map[string]string{"tenant": "Second", "email": "F@first.example", "password": "another good phrase"})
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if strings.Contains(msg, "already exists") {
		t.Errorf("the answer says the account exists: %q", msg)
	}
	u, _ := e.st.GetUserByEmail(t.Context(), "f@first.example")
	entries, _, err := e.st.ListAudit(t.Context(), store.AuditFilter{TenantID: u.Tenant(), Action: "auth.signup_existing"}, store.Page{Number: 1, PerPage: 5})
	if err != nil || len(entries) != 1 {
		t.Errorf("the account's organisation was not told: %d entries, %v", len(entries), err)
	}
}
