package otp

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := Code(secret, Step(at))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodes(t *testing.T) {
	// RFC 6238 appendix B, SHA-1, secret "12345678901234567890", the last
	// six digits of each eight-digit value.
	secret := Encoding.EncodeToString([]byte("12345678901234567890"))
	for _, c := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		if got := code(t, secret, time.Unix(c.unix, 0)); got != c.want {
			t.Errorf("at %d: %s, want %s", c.unix, got, c.want)
		}
	}
	now := time.Unix(1111111111, 0)
	for _, c := range []struct {
		name string
		at   time.Time
		ok   bool
	}{{"now", now, true}, {"a step early", now.Add(-30 * time.Second), true}, {"a step late", now.Add(30 * time.Second), true},
		{"two steps early", now.Add(-60 * time.Second), false}, {"two steps late", now.Add(60 * time.Second), false}} {
		if _, ok := Match(secret, code(t, secret, c.at), now); ok != c.ok {
			t.Errorf("%s: %v, want %v", c.name, ok, c.ok)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := Match(secret, bad, now); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	u := URL("Fibrix Cloud", "a+b@example.com", "ABC")
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "otpauth" || p.Host != "totp" || p.Query().Get("secret") != "ABC" || p.Query().Get("issuer") != "Fibrix Cloud" ||
		!strings.HasSuffix(p.Path, ":a+b@example.com") {
		t.Errorf("otpauth URL %s: %v", u, err)
	}
}
