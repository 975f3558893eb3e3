package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	box, err := NewBox(key(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range []string{"", "secret", "p@ss wörd", strings.Repeat("x", 1000)} {
		s, err := box.Seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, "v1:") {
			t.Errorf("Seal(%q) = %q: no v1: prefix", pt, s)
		}
		if pt != "" && strings.Contains(s, pt) {
			t.Errorf("Seal(%q) = %q contains the plaintext", pt, s)
		}
		got, err := box.Open(s)
		if err != nil || got != pt {
			t.Errorf("Open(Seal(%q)) = %q, %v", pt, got, err)
		}
	}
}

func TestSealNeverRepeats(t *testing.T) {
	box, _ := NewBox(key(1))
	a, _ := box.Seal("secret")
	b, _ := box.Seal("secret")
	if a == b {
		t.Errorf("two seals of the same plaintext are equal (%q): nonce not random", a)
	}
	// The plaintext appears in no encoding of the output either.
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "v1:"))
	if bytes.Contains(raw, []byte("secret")) {
		t.Error("sealed bytes contain the plaintext")
	}
}

func TestOpenRefuses(t *testing.T) {
	box, _ := NewBox(key(1))
	other, _ := NewBox(key(2))
	s, _ := box.Seal("secret")
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "v1:"))
	flip := func(i int) string {
		r := bytes.Clone(raw)
		r[i] ^= 1
		return "v1:" + base64.StdEncoding.EncodeToString(r)
	}
	tests := []struct {
		name   string
		box    *Box
		sealed string
	}{
		{"wrong key", other, s},
		{"nonce flipped", box, flip(0)},
		{"ciphertext flipped", box, flip(13)},
		{"tag flipped", box, flip(len(raw) - 1)},
		{"truncated by one byte", box, "v1:" + base64.StdEncoding.EncodeToString(raw[:len(raw)-1])},
		{"truncated to the nonce", box, "v1:" + base64.StdEncoding.EncodeToString(raw[:12])},
		{"empty", box, ""},
		{"no prefix", box, strings.TrimPrefix(s, "v1:")},
		{"other version", box, "v2:" + strings.TrimPrefix(s, "v1:")},
		{"not base64", box, "v1:***"},
		{"trailing garbage", box, s + "A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.box.Open(tc.sealed)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
			if got != "" {
				t.Errorf("Open returned %q with its error", got)
			}
		})
	}
}

func TestNewBoxKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewBox(make([]byte, n)); err == nil {
			t.Errorf("NewBox(%d-byte key) succeeded", n)
		}
	}
}
