package sshkey

import (
	//lint:ignore SA1019 DSA keys are built only to check that they are refused
	"crypto/dsa"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// requireKeygen skips without ssh-keygen on a workstation but fails in CI,
// where a missing tool would otherwise hide the comparison tests.
func requireKeygen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh-keygen is not on PATH; install openssh-client so keys can be compared with OpenSSH")
		}
		t.Skip("ssh-keygen is not on PATH; install openssh-client to compare keys with OpenSSH")
	}
}

// keygen creates a key pair with ssh-keygen and returns the private key path.
func keygen(t *testing.T, comment string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id")
	args = append([]string{"-q", "-N", "", "-C", comment, "-f", path}, args...)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return path
}

// keygenInfo is what `ssh-keygen -lf` prints: "BITS SHA256:... comment (TYPE)".
type keygenInfo struct {
	Bits        int
	Fingerprint string
	Comment     string
	Label       string
}

func fingerprint(t *testing.T, pubPath string) keygenInfo {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-lf", pubPath).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -lf %s: %v", pubPath, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		t.Fatalf("unexpected ssh-keygen -lf output %q", out)
	}
	bits, err := strconv.Atoi(fields[0])
	if err != nil {
		t.Fatalf("bits in %q: %v", out, err)
	}
	last := fields[len(fields)-1]
	return keygenInfo{
		Bits:        bits,
		Fingerprint: fields[1],
		Comment:     strings.Join(fields[2:len(fields)-1], " "),
		Label:       strings.Trim(last, "()"),
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseMatchesSSHKeygen(t *testing.T) {
	requireKeygen(t)
	tests := []struct {
		name     string
		args     []string
		wantType string
		label    string
	}{
		{name: "ed25519", args: []string{"-t", "ed25519"}, wantType: "ssh-ed25519", label: "ED25519"},
		{name: "ecdsa 256", args: []string{"-t", "ecdsa", "-b", "256"}, wantType: "ecdsa-sha2-nistp256", label: "ECDSA"},
		{name: "ecdsa 384", args: []string{"-t", "ecdsa", "-b", "384"}, wantType: "ecdsa-sha2-nistp384", label: "ECDSA"},
		{name: "ecdsa 521", args: []string{"-t", "ecdsa", "-b", "521"}, wantType: "ecdsa-sha2-nistp521", label: "ECDSA"},
		{name: "rsa 2048", args: []string{"-t", "rsa", "-b", "2048"}, wantType: "ssh-rsa", label: "RSA"},
		{name: "rsa 3072", args: []string{"-t", "rsa", "-b", "3072"}, wantType: "ssh-rsa", label: "RSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv := keygen(t, "alice@laptop "+tt.name, tt.args...)
			info := fingerprint(t, priv+".pub")
			if info.Label != tt.label {
				t.Fatalf("ssh-keygen reports type %q, want %q", info.Label, tt.label)
			}
			pubText := readFile(t, priv+".pub")

			got, err := Parse(pubText)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Key{
				Type:        tt.wantType,
				Bits:        info.Bits,
				Fingerprint: info.Fingerprint,
				Comment:     info.Comment,
				Authorized:  strings.TrimSpace(pubText),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Security keys cannot be generated without hardware, so their public halves
// are built here and OpenSSH is asked for the fingerprint.
func TestParseSecurityKeysMatchSSHKeygen(t *testing.T) {
	requireKeygen(t)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		blob     []byte
		wantType string
		label    string
	}{
		{
			name: "sk ed25519",
			blob: ssh.Marshal(struct {
				Name, Key, Application string
			}{"sk-ssh-ed25519@openssh.com", string(edPub), "ssh:"}),
			wantType: "sk-ssh-ed25519@openssh.com",
			label:    "ED25519-SK",
		},
		{
			name: "sk ecdsa",
			blob: ssh.Marshal(struct {
				Name, Curve, Key, Application string
			}{"sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", string(ecKey.PublicKey().Bytes()), "ssh:"}),
			wantType: "sk-ecdsa-sha2-nistp256@openssh.com",
			label:    "ECDSA-SK",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := tt.wantType + " " + base64.StdEncoding.EncodeToString(tt.blob) + " yubikey"
			path := filepath.Join(t.TempDir(), "id.pub")
			if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			info := fingerprint(t, path)
			if info.Label != tt.label {
				t.Fatalf("ssh-keygen reports type %q, want %q", info.Label, tt.label)
			}
			got, err := Parse(line)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Key{Type: tt.wantType, Bits: info.Bits, Fingerprint: info.Fingerprint, Comment: "yubikey", Authorized: line}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRefusesSSHKeygenOutput(t *testing.T) {
	requireKeygen(t)
	rsaSmall := keygen(t, "old", "-t", "rsa", "-b", "1024")
	ed := keygen(t, "secret", "-t", "ed25519")
	ca := keygen(t, "ca", "-t", "ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "alice", "-n", "alice", ed+".pub").CombinedOutput(); err != nil {
		t.Fatalf("signing certificate: %v\n%s", err, out)
	}
	privText := readFile(t, ed)

	tests := []struct {
		name  string
		input string
		want  string
	}{
		{name: "rsa 1024", input: readFile(t, rsaSmall+".pub"), want: "1024 bits; the minimum is 2048"},
		{name: "private key", input: privText, want: ".pub file"},
		{name: "certificate", input: readFile(t, ed+"-cert.pub"), want: "certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.input)
			checkRefusal(t, err, tt.want)
		})
	}

	t.Run("private key is not echoed", func(t *testing.T) {
		_, err := Parse(privText)
		if err == nil {
			t.Fatal("Parse accepted a private key")
		}
		for _, line := range strings.Split(privText, "\n")[1:] {
			if len(line) > 8 && strings.Contains(err.Error(), line[:8]) {
				t.Fatalf("error %q repeats part of the private key", err)
			}
		}
	})
}

func checkRefusal(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatal("Parse accepted the input")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

// authorizedLine returns "type base64" for key, without a comment.
func authorizedLine(t *testing.T, key any) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func newEd25519(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedLine(t, pub), sshPub
}

func newDSA(t *testing.T) string {
	t.Helper()
	var key dsa.PrivateKey
	if err := dsa.GenerateParameters(&key.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(&key, rand.Reader); err != nil {
		t.Fatal(err)
	}
	return authorizedLine(t, &key.PublicKey)
}

func TestParseRefusals(t *testing.T) {
	ed, edPub := newEd25519(t)
	other, _ := newEd25519(t)

	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privBlock, err := ssh.MarshalPrivateKey(edPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: edPub, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	certLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
	// A well-formed blob of a type the ssh package does not know.
	unknown := "ssh-xmss@openssh.com " + base64.StdEncoding.EncodeToString(ssh.Marshal(struct{ Name, Key string }{"ssh-xmss@openssh.com", "0123456789"}))
	edFields := strings.Fields(ed)
	damaged := edFields[0] + " " + edFields[1][:40]

	tests := []struct {
		name  string
		input string
		want  string
	}{
		{name: "empty", input: "", want: "paste a public key"},
		{name: "whitespace", input: " \r\n\t\n", want: "paste a public key"},
		{name: "only comments", input: "# my key\n#\n", want: "paste a public key"},
		{name: "oversized", input: ed + " " + strings.Repeat("x", MaxInput), want: "larger than 16 KiB"},
		{name: "private key", input: string(pem.EncodeToMemory(privBlock)), want: "private key"},
		{name: "private key after public key", input: ed + "\n" + string(pem.EncodeToMemory(privBlock)), want: "private key"},
		{name: "putty private key", input: "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n", want: "private key"},
		{name: "garbage", input: "hello world", want: "not an OpenSSH public key"},
		{name: "garbage base64", input: "ssh-ed25519 AAAA!!!notbase64", want: "damaged"},
		{name: "cut short", input: damaged, want: "damaged"},
		{name: "type mismatch", input: "ssh-rsa " + edFields[1], want: "damaged"},
		{name: "ssh2 format", input: "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n", want: "ssh-keygen -i"},
		{name: "pem public key", input: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", want: "ssh-keygen -i"},
		{name: "two keys", input: ed + "\n" + other + "\n", want: "more than one key"},
		{name: "two keys with comments between", input: ed + " a\n# second\n" + other + " b", want: "more than one key"},
		{name: "two keys on one line", input: ed + " " + other, want: "more than one key"},
		{name: "two keys after a comment", input: ed + " laptop " + other + " desktop", want: "more than one key"},
		{name: "trailing data", input: ed + " laptop\nthis is not a key\n", want: "extra text after the key"},
		{name: "text after carriage return", input: ed + " laptop\rgarbage", want: "extra text after the key"},
		{name: "command option", input: `command="x" ` + ed, want: "command="},
		{name: "from option", input: `from="1.2.3.4" ` + ed, want: "options"},
		{name: "no-pty option", input: "no-pty " + ed, want: "options"},
		{name: "restrict option", input: "restrict,pty " + ed, want: "options"},
		{name: "dsa", input: newDSA(t) + " old", want: "DSA keys are no longer accepted"},
		{name: "rsa 1024", input: authorizedLine(t, &rsaSmall.PublicKey), want: "1024 bits; the minimum is 2048"},
		{name: "certificate", input: certLine, want: "certificates"},
		{name: "unknown type", input: unknown, want: "ssh-xmss@openssh.com keys are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.input)
			checkRefusal(t, err, tt.want)
		})
	}
}

func TestParseAccepts(t *testing.T) {
	ed, pub := newEd25519(t)
	fp := ssh.FingerprintSHA256(pub)
	long := strings.Repeat("é", 150)

	tests := []struct {
		name  string
		input string
		want  Key
	}{
		{
			name:  "plain",
			input: ed + " alice@laptop\n",
			want:  Key{Comment: "alice@laptop", Authorized: ed + " alice@laptop"},
		},
		{
			name:  "no comment",
			input: ed,
			want:  Key{Authorized: ed},
		},
		{
			name:  "windows line endings and whitespace",
			input: "\r\n  " + ed + "   alice@laptop  \r\n\r\n",
			want:  Key{Comment: "alice@laptop", Authorized: ed + " alice@laptop"},
		},
		{
			name:  "comment lines around the key",
			input: "# work laptop\r\n" + ed + " alice\r\n# end\r\n",
			want:  Key{Comment: "alice", Authorized: ed + " alice"},
		},
		{
			name:  "byte order mark",
			input: "\ufeff" + ed + " alice\r\n",
			want:  Key{Comment: "alice", Authorized: ed + " alice"},
		},
		{
			name:  "tab separated",
			input: strings.Replace(ed, " ", "\t", 1) + "\talice",
			want:  Key{Comment: "alice", Authorized: ed + " alice"},
		},
		{
			name:  "control characters removed from comment",
			input: ed + " ali\x1b[31mce\x00 \u202eevil",
			want:  Key{Comment: "ali[31mce evil", Authorized: ed + " ali[31mce evil"},
		},
		{
			name:  "long comment cut to 100 runes",
			input: ed + " " + long,
			want:  Key{Comment: long[:200], Authorized: ed + " " + long[:200]},
		},
		{
			name:  "comment with words that look like a key type",
			input: ed + " my ssh-rsa key",
			want:  Key{Comment: "my ssh-rsa key", Authorized: ed + " my ssh-rsa key"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Type = "ssh-ed25519"
			tt.want.Bits = 256
			tt.want.Fingerprint = fp
			got, err := Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRSABits(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(authorizedLine(t, &key.PublicKey))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.Type != "ssh-rsa" || got.Bits != 2048 {
		t.Errorf("got type %q with %d bits, want ssh-rsa with 2048", got.Type, got.Bits)
	}
}

func TestMaxInputBoundary(t *testing.T) {
	ed, _ := newEd25519(t)
	pad := MaxInput - len(ed) - 1
	if _, err := Parse(ed + "\n" + strings.Repeat(" ", pad)); err != nil {
		t.Errorf("input of exactly MaxInput bytes refused: %v", err)
	}
	if _, err := Parse(ed + "\n" + strings.Repeat(" ", pad+1)); err == nil {
		t.Error("input of MaxInput+1 bytes accepted")
	}
}
