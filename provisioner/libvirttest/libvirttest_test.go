package libvirttest_test

import (
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
)

// TestEnsure calls Ensure from several goroutines at once (the lock file
// serialises them as it does separate test binaries), then checks the
// daemon with libvirt's own client.
func TestEnsure(t *testing.T) {
	var wg sync.WaitGroup
	socks := make([]string, 4)
	for i := range socks {
		wg.Go(func() { socks[i] = libvirttest.Ensure(t) })
	}
	wg.Wait()
	for _, s := range socks {
		if s != libvirttest.Socket {
			t.Fatalf("Ensure returned %q, want %q", s, libvirttest.Socket)
		}
	}
	if libvirttest.Ensure(t) != libvirttest.Socket {
		t.Fatal("second Ensure returned another socket")
	}
	virsh, err := exec.LookPath("virsh")
	if err != nil {
		msg := "virsh not found: install the Debian package libvirt-clients"
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	for _, uri := range []string{"test:///default", "qemu:///system"} {
		out, err := exec.Command(virsh, "-c", uri, "list", "--all").CombinedOutput()
		if err != nil {
			t.Errorf("virsh -c %s list: %v\n%s", uri, err, out)
		}
	}
}
