package sshkey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func FuzzParse(f *testing.F) {
	// Fixed seeds keep the corpus the same from run to run.
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		f.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	for _, seed := range []string{
		"",
		line,
		line + " alice@laptop\r\n",
		"# comment\n" + line + " a\n# end\n",
		line + " a\n" + line + " b\n",
		line + " a " + line,
		`command="x" ` + line,
		line + " ali\x00ce \u202e",
		"ssh-ed25519 AAAA",
		"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		k, err := Parse(input)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			return
		}
		if !strings.HasPrefix(k.Fingerprint, "SHA256:") {
			t.Fatalf("fingerprint %q lacks the SHA256: prefix", k.Fingerprint)
		}
		if strings.ContainsAny(k.Authorized, "\r\n") {
			t.Fatalf("authorized line %q spans more than one line", k.Authorized)
		}
		again, err := Parse(k.Authorized)
		if err != nil {
			t.Fatalf("Parse(%q) of its own output: %v", k.Authorized, err)
		}
		if diff := cmp.Diff(k, again); diff != "" {
			t.Fatalf("round trip changed the key (-first +second):\n%s", diff)
		}
	})
}
