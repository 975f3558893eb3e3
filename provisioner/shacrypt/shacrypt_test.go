package shacrypt

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSpecVectors pins the test vectors of Drepper's specification.
func TestSpecVectors(t *testing.T) {
	for _, tc := range []struct{ name, setting, password, want string }{
		{"default rounds", "$6$saltstring", "Hello world!",
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"long salt is cut", "$6$rounds=10000$saltstringsaltstring", "Hello world!",
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"rounds clamped", "$6$rounds=10$roundstoolow", "the minimum number is still observed",
			"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Crypt(tc.password, tc.setting); got != tc.want {
				t.Errorf("Crypt(%q, %q)\n got %s\nwant %s", tc.password, tc.setting, got, tc.want)
			}
		})
	}
}

// TestAgainstOpenSSL compares with `openssl passwd -6`, which calls the
// system's own implementation, for passwords around the 64-byte block.
func TestAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"x", "Hello world!", "K7mPq2xW9vRt4nLs8bHj", strings.Repeat("a", 64), strings.Repeat("b", 65), strings.Repeat("pässwörd", 20)} {
		out, err := exec.Command("openssl", "passwd", "-6", "-salt", salt, pw).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(string(out))
		if got := Crypt(pw, "$6$"+salt); got != want {
			t.Errorf("password of %d bytes\n got %s\nwant %s", len(pw), got, want)
		}
	}
}

func TestHash(t *testing.T) {
	h, err := Hash("K7mPq2xW9vRt4nLs8bHj")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[1] != "6" || len(parts[2]) != 16 || len(parts[3]) != 86 {
		t.Fatalf("hash %q is not $6$<16-char salt>$<86 chars>", h)
	}
	if Crypt("K7mPq2xW9vRt4nLs8bHj", h) != h {
		t.Error("the hash does not check against its own password")
	}
	if h2, _ := Hash("K7mPq2xW9vRt4nLs8bHj"); h2 == h {
		t.Error("two hashes share a salt")
	}
}
