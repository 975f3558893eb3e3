// Package secret seals small secrets (BMC passwords) for storage at rest
// with AES-256-GCM under a key the caller holds.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// prefix versions the format, so that a later key or algorithm can be
// told apart from this one.
const prefix = "v1:"

// KeySize is the length of the key NewBox takes.
const KeySize = 32

// ErrOpen marks a sealed value that cannot be opened: tampered with,
// truncated, or sealed under another key.
var ErrOpen = errors.New("cannot open sealed secret")

// Box seals and opens secrets under one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key is %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext under a fresh random nonce and returns
// "v1:" + base64(nonce | ciphertext).
func (b *Box) Seal(plaintext string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(prefix))
	return prefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal returned.
func (b *Box) Open(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", fmt.Errorf("%w: not a v1 sealed value", ErrOpen)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("%w: bad encoding", ErrOpen)
	}
	ns := b.aead.NonceSize()
	if len(raw) < ns+b.aead.Overhead() {
		return "", fmt.Errorf("%w: truncated", ErrOpen)
	}
	pt, err := b.aead.Open(nil, raw[:ns], raw[ns:], []byte(prefix))
	if err != nil {
		// GCM does not say why; tampering and a wrong key look alike.
		return "", fmt.Errorf("%w: wrong key or tampered", ErrOpen)
	}
	return string(pt), nil
}
