package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// Time-based one-time passwords as authenticator apps make them (RFC 6238
// with the defaults every app takes: HMAC-SHA1, 30 s steps, 6 digits).
const (
	totpPeriod = 30
	totpDigits = 6
	// totpSkew is how many steps either side of now a code may be from,
	// for a phone whose clock is a little off.
	totpSkew = 1
	// recoveryCodeCount is how many recovery codes a user gets at a time.
	recoveryCodeCount = 10
)

var totpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPSecret returns a random 160-bit secret, base32 as apps take it.
func newTOTPSecret() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return totpEncoding.EncodeToString(b)
}

// totpStep is the time step t falls in.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// totpCode is the code of secret for one time step (RFC 4226 section 5.3).
func totpCode(secret string, step int64) (string, error) {
	key, err := totpEncoding.DecodeString(strings.ToUpper(secret))
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
	return fmt.Sprintf("%0*d", totpDigits, n%1_000_000), nil
}

// matchTOTP returns the step within the allowed skew of now whose code is
// code, or false. It compares every candidate in constant time.
func matchTOTP(secret, code string, now time.Time) (int64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	var found int64
	ok := false
	cur := totpStep(now)
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totpCode(secret, step)
		if err != nil {
			return 0, false
		}
		if hmac.Equal([]byte(want), []byte(code)) {
			found, ok = step, true
		}
	}
	return found, ok
}

// otpauthURL is what the enrolment QR code holds (the Key Uri Format that
// authenticator apps read).
func otpauthURL(issuer, account, secret string) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {fmt.Sprint(totpDigits)}, "period": {fmt.Sprint(totpPeriod)}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// qrModules is the QR code of text as rows of dark (true) and light
// modules, quiet zone included, for the page to draw.
func qrModules(text string) ([][]bool, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("draw QR code: %w", err)
	}
	return q.Bitmap(), nil
}

// newRecoveryCodes returns recovery codes to show once, as xxxxx-xxxxx
// (50 random bits each), and the hashes to keep.
func newRecoveryCodes() (codes, hashes []string) {
	for range recoveryCodeCount {
		b := make([]byte, 7)
		_, _ = rand.Read(b)
		s := strings.ToLower(totpEncoding.EncodeToString(b))[:10]
		codes = append(codes, s[:5]+"-"+s[5:])
		hashes = append(hashes, hashRecoveryCode(s))
	}
	return codes, hashes
}

// normalRecoveryCode is a recovery code as typed, without case, spaces or
// dashes; "" when it cannot be one.
func normalRecoveryCode(code string) string {
	s := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(s) != 10 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return ""
	}
	return s
}

// hashRecoveryCode is how a recovery code is kept: the codes are random,
// so a plain hash is enough and allows lookup.
func hashRecoveryCode(normal string) string {
	h := sha256.Sum256([]byte("recovery:" + normal))
	return hex.EncodeToString(h[:])
}
