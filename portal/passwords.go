package portal

import (
	"strings"
	"unicode"
)

// Passwords that are long enough but guessed first (NIST SP 800-63B asks
// to refuse what appears in lists of breached and common passwords). The
// words are compared after lower-casing and with up to six trailing
// digits or symbols taken off, so "Password2024!" is refused as "password".
var commonWords = strings.Fields(`
password passw0rd p@ssword p@ssw0rd passwort motdepasse contrasena senha wachtwoord
qwerty qwertz azerty qwertyuiop asdfghjkl zxcvbnm qazwsx qazwsxedc qazwsxedcrfv zaq12wsx
1qaz2wsx 1qaz2wsx3edc 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y q1w2e3r4 q1w2e3r4t5 abc123 123abc
letmein welcome welcome1 iloveyou loveyou trustno1 whatever changeme default secret
admin administrator root toor guest user login access master superuser system server
monkey dragon football baseball basketball soccer hockey tennis golfer cricket rugby
sunshine princess shadow superman batman spiderman starwars pokemon minecraft fortnite
freedom michael jennifer jordan hunter ranger buster charlie thomas robert daniel
andrew joshua jessica ashley amanda nicole michelle matthew anthony william george
computer internet google facebook linkedin samsung iphone android windows linux ubuntu
debian fibrix fibrixcloud cloud hosting network database oracle mysql postgres
chocolate butterfly liverpool chelsea arsenal manchester barcelona juventus
killer pepper ginger cookie flower hello loveme lovely matrix mustang harley
corvette ferrari porsche mercedes yankees cowboys eagles steelers lakers
summer winter spring autumn january february march april june july august
september october november december monday friday sunday holiday
qwerty123 password1 abcdefg abcdefgh abcdefghi abcdefghij
`)

var common = func() map[string]bool {
	m := make(map[string]bool, len(commonWords))
	for _, w := range commonWords {
		m[w] = true
	}
	return m
}()

// keyboardRuns are sequences that people walk along.
var keyboardRuns = []string{
	"abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm",
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "qwertzuiop", "azertyuiop",
}

// weakPassword explains why a password is too easy to guess, or returns "".
// personal are words of the account (email, organisation) that must not
// make up the password.
func weakPassword(pw string, personal ...string) string {
	p := strings.ToLower(pw)
	base := strings.TrimRightFunc(p, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) })
	switch {
	case common[p] || (len(p)-len(base) <= 6 && common[base]):
		return "this password is on the lists attackers try first; choose another"
	case repeated(p):
		return "this password repeats the same few characters; choose another"
	case walked(p):
		return "this password is a run of the keyboard or the alphabet; choose another"
	}
	for _, w := range personal {
		w = strings.ToLower(strings.TrimSpace(w))
		if len(w) >= 4 && (p == w || base == w || strings.Contains(p, w) && len(p)-len(w) <= 4) {
			return "do not build the password from your email or organisation name"
		}
	}
	return ""
}

// repeated reports whether s is one short unit over and over
// ("aaaaaaaaaa", "passwordpassword", "abcabcabcabc").
func repeated(s string) bool {
	for n := 1; n <= len(s)/2; n++ {
		if len(s)%n == 0 && strings.Repeat(s[:n], len(s)/n) == s {
			return true
		}
	}
	return false
}

// walked reports whether s is a stretch of a keyboard row or of the
// alphabet or digits, forwards or backwards.
func walked(s string) bool {
	r := reverse(s)
	for _, run := range keyboardRuns {
		if strings.Contains(run, s) || strings.Contains(run, r) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	b := []rune(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// emailLocal is the part of an email address before the @.
func emailLocal(email string) string {
	local, _, _ := strings.Cut(email, "@")
	return local
}
