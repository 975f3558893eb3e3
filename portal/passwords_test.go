package portal

import (
	"net/http"
	"testing"
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
