// Package sshkey checks the SSH public keys customers upload for their VMs
// and turns them into a normalised authorized_keys line.
package sshkey

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// algoDSA is the name of the DSA key type, recognised only to refuse it.
const algoDSA = "ssh-dss"

// MaxInput is the number of bytes accepted from a paste or upload.
const MaxInput = 16 << 10

const (
	minRSABits      = 2048
	maxCommentRunes = 100
)

// Messages shown to the customer as they are, so each is a complete sentence.
const (
	msgEmpty     = "paste a public key or choose a .pub file"
	msgPrivate   = "this is a private key, which must stay on your computer; upload the matching .pub file instead"
	msgFormat    = "this key is in PEM or SSH2 format; convert it with ssh-keygen -i -f FILE (add -m PKCS8 for PEM files) and paste the result"
	msgNotKey    = "this is not an OpenSSH public key; it should be one line starting with a key type such as ssh-ed25519"
	msgDamaged   = "the key data is damaged or incomplete; copy the whole line from your .pub file"
	msgMultiple  = "this contains more than one key; add one key at a time"
	msgOptions   = "key options such as command= or from= are not allowed"
	msgTrailing  = "there is extra text after the key; paste only the single line from your .pub file"
	msgDSA       = "DSA keys are no longer accepted; use ed25519"
	msgCert      = "certificates are not accepted; upload the plain public key instead of the -cert.pub file"
	msgTypeOther = "this key type is not supported; use ed25519, ECDSA or RSA"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid ssh public key")

// Key is a validated public key.
type Key struct {
	Type        string // e.g. "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "sk-ssh-ed25519@openssh.com"
	Bits        int    // RSA modulus bits, ECDSA curve bits (256/384/521), 256 for ed25519
	Fingerprint string // ssh.FingerprintSHA256, as `ssh-keygen -lf` prints it ("SHA256:...")
	Comment     string // trimmed, control characters removed, at most 100 runes
	Authorized  string // "type base64" plus " comment" when there is one, without a newline
}

// invalidError carries a message meant for the customer while still matching
// ErrInvalid, so handlers can show Error() directly in the form.
type invalidError string

func (e invalidError) Error() string { return string(e) }

func (invalidError) Is(target error) bool { return target == ErrInvalid }

// Parse validates a single OpenSSH public key as pasted or uploaded by a
// customer. Blank lines and lines starting with # around the key are ignored.
func Parse(input string) (Key, error) {
	if len(input) > MaxInput {
		return Key{}, invalidError(fmt.Sprintf("the key is larger than %d KiB; a public key is one short line from a .pub file", MaxInput>>10))
	}
	// Editors on Windows may save a .pub file with a byte order mark, which
	// would otherwise be read as a key option.
	input = strings.TrimPrefix(input, "\ufeff")
	if strings.TrimSpace(input) == "" {
		return Key{}, invalidError(msgEmpty)
	}
	// Checked before anything else so that no later message can quote
	// part of a secret back to the customer.
	if hasPrivateMarker(input) {
		return Key{}, invalidError(msgPrivate)
	}

	lines := contentLines(input)
	if len(lines) == 0 {
		return Key{}, invalidError(msgEmpty)
	}
	// The first line alone goes to the ssh package because it silently skips
	// lines it cannot read; the others are judged below.
	pub, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(lines[0]))
	if err != nil {
		return Key{}, explain(input, lines[0])
	}
	if len(options) > 0 {
		return Key{}, invalidError(msgOptions)
	}
	if len(lines) > 1 {
		for _, line := range lines[1:] {
			if isKey(line) {
				return Key{}, invalidError(msgMultiple)
			}
		}
		return Key{}, invalidError(msgTrailing)
	}

	bits, err := checkType(pub)
	if err != nil {
		return Key{}, err
	}

	clean := stripControls(comment)
	comment = truncate(clean, maxCommentRunes)
	// Removing control characters can join text into something that was not
	// visible before, so the cleaned comment is checked again.
	if hasPrivateMarker(comment) {
		return Key{}, invalidError(msgPrivate)
	}
	// Keys pasted from a single-line field often arrive glued together; the
	// second key would otherwise be stored silently as a comment.
	if containsKey(clean) || containsKey(comment) {
		return Key{}, invalidError(msgMultiple)
	}

	authorized := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
	if comment != "" {
		authorized += " " + comment
	}
	return Key{
		Type:        pub.Type(),
		Bits:        bits,
		Fingerprint: ssh.FingerprintSHA256(pub),
		Comment:     comment,
		Authorized:  authorized,
	}, nil
}

// checkType refuses key types the VMs will not trust and returns the key size.
func checkType(pub ssh.PublicKey) (int, error) {
	if _, ok := pub.(*ssh.Certificate); ok {
		return 0, invalidError(msgCert)
	}
	switch t := pub.Type(); t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKECDSA256:
		return 256, nil
	case ssh.KeyAlgoECDSA384:
		return 384, nil
	case ssh.KeyAlgoECDSA521:
		return 521, nil
	case ssh.KeyAlgoRSA:
		cpk, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return 0, invalidError(msgDamaged)
		}
		rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return 0, invalidError(msgDamaged)
		}
		bits := rk.N.BitLen()
		if bits < minRSABits {
			return 0, invalidError(fmt.Sprintf("this RSA key is %d bits; the minimum is %d bits, or use ed25519", bits, minRSABits))
		}
		return bits, nil
	default:
		return 0, typeError(t)
	}
}

// typeError explains why a key of a type we recognise by name is refused.
func typeError(t string) error {
	switch {
	case t == algoDSA:
		return invalidError(msgDSA)
	case strings.Contains(t, "-cert-"):
		return invalidError(msgCert)
	case isPrintableName(t):
		return invalidError(fmt.Sprintf("%s keys are not supported; use ed25519, ECDSA or RSA", t))
	default:
		return invalidError(msgTypeOther)
	}
}

// explain picks the most helpful message for a line that did not parse.
func explain(input, line string) error {
	if strings.Contains(input, "BEGIN SSH2 PUBLIC KEY") || strings.Contains(input, "BEGIN PUBLIC KEY") || strings.Contains(input, "BEGIN RSA PUBLIC KEY") {
		return invalidError(msgFormat)
	}
	fields := strings.Fields(line)
	if t := declaredType(fields); t != "" {
		if isSupported(t) {
			return invalidError(msgDamaged)
		}
		return typeError(t)
	}
	for _, f := range fields {
		switch {
		case f == algoDSA:
			return invalidError(msgDSA)
		case isSupported(f):
			return invalidError(msgDamaged)
		}
	}
	return invalidError(msgNotKey)
}

// declaredType finds a "name base64" pair whose blob starts with that name,
// which identifies key types the ssh package cannot parse.
func declaredType(fields []string) string {
	for i := 0; i+1 < len(fields); i++ {
		blob, err := base64.StdEncoding.DecodeString(fields[i+1])
		if err != nil || len(blob) < 4 {
			continue
		}
		n := binary.BigEndian.Uint32(blob)
		if uint64(n) > uint64(len(blob)-4) {
			continue
		}
		if name := string(blob[4 : 4+n]); name != "" && name == fields[i] {
			return name
		}
	}
	return ""
}

func isSupported(t string) bool {
	switch t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256,
		ssh.KeyAlgoRSA:
		return true
	}
	return false
}

// isPrintableName limits which type names are echoed in a message.
func isPrintableName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@.-_", r)
		if !ok {
			return false
		}
	}
	return true
}

func isKey(line string) bool {
	_, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	return err == nil
}

// containsKey reports whether s holds a "type base64" pair that parses.
func containsKey(s string) bool {
	fields := strings.Fields(s)
	for i := 0; i+1 < len(fields); i++ {
		blob, err := base64.StdEncoding.DecodeString(fields[i+1])
		if err != nil {
			continue
		}
		if pub, err := ssh.ParsePublicKey(blob); err == nil && pub.Type() == fields[i] {
			return true
		}
	}
	return false
}

func hasPrivateMarker(s string) bool {
	return strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "PuTTY-User-Key-File")
}

// contentLines returns the trimmed lines that are neither blank nor comments.
// A lone carriage return also ends a line, because the ssh package would
// otherwise drop everything after it without a word.
func contentLines(input string) []string {
	input = strings.ReplaceAll(input, "\r\n", "\n")
	input = strings.ReplaceAll(input, "\r", "\n")
	var out []string
	for line := range strings.SplitSeq(input, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// stripControls drops invalid UTF-8, control characters and the characters
// that reorder or break text, so the comment displays as what it is.
func stripControls(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r),
			r == '\u2028', r == '\u2029',
			r >= '\u202a' && r <= '\u202e',
			r >= '\u2066' && r <= '\u2069',
			r == '\u200e', r == '\u200f', r == '\u061c':
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return strings.TrimSpace(s[:pos])
		}
		i++
	}
	return s
}
