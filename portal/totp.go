package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// recoveryCodeCount is how many recovery codes a user gets at a time.
const recoveryCodeCount = 10

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

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
		s := strings.ToLower(recoveryEncoding.EncodeToString(b))[:10]
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
