package hypervisor

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

func TestSSH(t *testing.T) {
	libvirttest.Ensure(t)
	clientKey, _ := libvirttest.NewKey(t)
	addr, hostKey := libvirttest.SSHD(t, clientKey.PublicKey())
	uri := "qemu+ssh://root@" + addr + "/system"
	cx := ctx(t, 60*time.Second)

	// Trust on first use: the key offered comes back for pinning.
	start := time.Now()
	c, err := Dial(cx, Config{URI: uri, Signer: clientKey})
	if err != nil {
		t.Fatalf("Dial (TOFU): %v", err)
	}
	t.Logf("Dial over ssh: %v", time.Since(start))
	got := c.HostKey()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got != libvirttest.Authorized(hostKey) {
		t.Fatalf("HostKey() = %q, want %q", got, libvirttest.Authorized(hostKey))
	}

	// Pinned: the same key works, and the connection does real work.
	c, err = Dial(cx, Config{URI: uri, HostKey: got, Signer: clientKey})
	if err != nil {
		t.Fatalf("Dial (pinned): %v", err)
	}
	defer c.Close()
	if c.HostKey() != got {
		t.Errorf("HostKey() = %q, want the pinned %q", c.HostKey(), got)
	}
	spec := DomainSpec{Name: unique("fibrix-test-ssh-"), UUID: uuid.NewString(), VCPUs: 1, MemoryMiB: 64, Type: TypeQEMU}
	if err := c.Define(cx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Undefine(t.Context(), spec.Name) })
	names, err := c.Domains(cx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, spec.Name) {
		t.Errorf("Domains() = %v, want it to contain %s", names, spec.Name)
	}
	if err := c.Undefine(cx, spec.Name); err != nil {
		t.Fatal(err)
	}
	f, err := c.Facts(cx)
	if err != nil || f.Threads < 1 || f.MemoryMiB < 1 {
		t.Errorf("Facts over ssh = %+v, %v", f, err)
	}

	// Another pinned key: refused, with a clear reason.
	other, _ := libvirttest.NewKey(t)
	_, err = Dial(cx, Config{URI: uri, HostKey: libvirttest.Authorized(other.PublicKey()), Signer: clientKey})
	if !errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial with another pinned key = %v, want ErrHostKey", err)
	}
	t.Logf("Dial with another pinned key: %v", err)
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(hostKey)) {
		t.Errorf("error %q does not name the offered key %s", err, ssh.FingerprintSHA256(hostKey))
	}

	// A client key the host does not authorise: refused.
	stranger, _ := libvirttest.NewKey(t)
	if _, err := Dial(cx, Config{URI: uri, HostKey: got, Signer: stranger}); err == nil {
		t.Error("Dial with an unauthorised client key succeeded")
	}
	// Malformed configuration: refused before dialling.
	for _, cfg := range []Config{
		{URI: uri},
		{URI: uri, HostKey: "not a key", Signer: clientKey},
		{URI: "qemu+tls://h/system", Signer: clientKey},
		{URI: "qemu://remote/system"},
	} {
		if _, err := Dial(cx, cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("Dial(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}
