// Package otp makes and checks time-based one-time passwords as
// authenticator apps do (RFC 6238 with the defaults every app takes:
// HMAC-SHA1, 30 s steps, 6 digits).
package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

const (
	// Period is the length of a time step in seconds.
	Period = 30
	// Digits is the length of a code.
	Digits = 6
	// skew is how many steps either side of now a code may be from, for a
	// phone whose clock is a little off.
	skew = 1
)

// Encoding is how secrets are written: base32 without padding.
var Encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a random 160-bit secret.
func NewSecret() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return Encoding.EncodeToString(b)
}

// Step is the time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / Period }

// Code is the code of secret for one time step (RFC 4226 section 5.3).
func Code(secret string, step int64) (string, error) {
	key, err := Encoding.DecodeString(strings.ToUpper(secret))
	if err != nil {
		return "", fmt.Errorf("decode authenticator secret: %w", err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", Digits, n%1_000_000), nil
}

// Match returns the step within the allowed skew of now whose code is
// code, or false. Every candidate is compared in constant time.
func Match(secret, code string, now time.Time) (int64, bool) {
	if len(code) != Digits {
		return 0, false
	}
	var found int64
	ok := false
	cur := Step(now)
	for step := cur - skew; step <= cur+skew; step++ {
		want, err := Code(secret, step)
		if err != nil {
			return 0, false
		}
		if hmac.Equal([]byte(want), []byte(code)) {
			found, ok = step, true
		}
	}
	return found, ok
}

// URL is what an enrolment QR code holds (the Key Uri Format that
// authenticator apps read).
func URL(issuer, account, secret string) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {fmt.Sprint(Digits)}, "period": {fmt.Sprint(Period)}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}
