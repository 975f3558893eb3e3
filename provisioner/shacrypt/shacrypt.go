// Package shacrypt makes SHA-512 crypt hashes ("$6$…", Ulrich Drepper's
// "Unix crypt using SHA-256 and SHA-512"), the form /etc/shadow and
// cloud-init's chpasswd take, so a guest's password never travels in clear.
package shacrypt

import (
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"strconv"
	"strings"
)

// The spec's limits and default.
const (
	DefaultRounds = 5000
	minRounds     = 1000
	maxRounds     = 999999999
	maxSalt       = 16
)

// alphabet is crypt's base-64 alphabet.
const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSalt returns a 16-character salt from crypto/rand.
func NewSalt() (string, error) {
	b := make([]byte, maxSalt)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)] // 256 is a multiple of 64: no bias
	}
	return string(b), nil
}

// Hash returns password's SHA-512 crypt hash with a fresh salt and the
// default rounds.
func Hash(password string) (string, error) {
	salt, err := NewSalt()
	if err != nil {
		return "", err
	}
	return Crypt(password, "$6$"+salt), nil
}

// Crypt computes the hash of password for setting, which is "$6$salt" or
// "$6$rounds=N$salt", optionally followed by "$" and a hash (as crypt(3)
// takes a stored hash to check against). The salt is cut at 16 characters
// and rounds are clamped to the spec's bounds, as glibc does.
func Crypt(password, setting string) string {
	s := strings.TrimPrefix(setting, "$6$")
	rounds, custom := DefaultRounds, false
	if r, ok := strings.CutPrefix(s, "rounds="); ok {
		if n, rest, found := strings.Cut(r, "$"); found {
			if v, err := strconv.ParseUint(n, 10, 64); err == nil {
				rounds, custom, s = int(min(max(v, minRounds), maxRounds)), true, rest
			}
		}
	}
	salt, _, _ := strings.Cut(s, "$")
	if len(salt) > maxSalt {
		salt = salt[:maxSalt]
	}
	sum := digest([]byte(password), []byte(salt), rounds)

	var b strings.Builder
	b.WriteString("$6$")
	if custom {
		fmt.Fprintf(&b, "rounds=%d$", rounds)
	}
	b.WriteString(salt)
	b.WriteByte('$')
	// The spec's byte order: triples (i, i+21, i+42) mod 63 with i
	// stepping by 22, then the last byte alone.
	for k := range 21 {
		i := 22 * k % 63
		encode(&b, sum[i], sum[(i+21)%63], sum[(i+42)%63], 4)
	}
	encode(&b, 0, 0, sum[63], 2)
	return b.String()
}

func encode(b *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		b.WriteByte(alphabet[w&0x3f])
		w >>= 6
	}
}

// digest is steps 1 to 21 of the spec.
func digest(pw, salt []byte, rounds int) []byte {
	h := sha512.New()
	h.Write(pw)
	h.Write(salt)
	h.Write(pw)
	altB := h.Sum(nil)

	h.Reset()
	h.Write(pw)
	h.Write(salt)
	cnt := len(pw)
	for ; cnt > 64; cnt -= 64 {
		h.Write(altB)
	}
	h.Write(altB[:cnt])
	for cnt = len(pw); cnt > 0; cnt >>= 1 {
		if cnt&1 != 0 {
			h.Write(altB)
		} else {
			h.Write(pw)
		}
	}
	a := h.Sum(nil)

	h.Reset()
	for range len(pw) {
		h.Write(pw)
	}
	p := repeat(h.Sum(nil), len(pw))

	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	s := repeat(h.Sum(nil), len(salt))

	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(a)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(a)
		} else {
			h.Write(p)
		}
		a = h.Sum(a[:0])
	}
	return a
}

// repeat is d repeated to n bytes.
func repeat(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}
