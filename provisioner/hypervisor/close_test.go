package hypervisor

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
)

// freezer relays TCP to a target until frozen; then it keeps the
// connections open but passes nothing, like a host that lost power.
type freezer struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go f.pipe(u, c)
			go f.pipe(c, u)
		}
	}()
	return f
}

func (f *freezer) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		frozen := f.frozen
		f.mu.Unlock()
		if frozen {
			continue // swallowed
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (f *freezer) freeze() { f.mu.Lock(); f.frozen = true; f.mu.Unlock() }

// TestCloseUnreachableHost: closing the connection to a host that stopped
// answering returns (with an error saying so) instead of waiting forever for
// libvirt's reply to the disconnect.
func TestCloseUnreachableHost(t *testing.T) {
	libvirttest.Ensure(t)
	clientKey, _ := libvirttest.NewKey(t)
	addr, _ := libvirttest.SSHD(t, clientKey.PublicKey())
	f := newFreezer(t, addr)
	c, err := Dial(ctx(t, 60*time.Second), Config{URI: "qemu+ssh://root@" + f.ln.Addr().String() + "/system", Signer: clientKey})
	if err != nil {
		t.Fatal(err)
	}
	f.freeze()
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not answer the disconnect") {
			t.Errorf("Close = %v, want an error about the unanswered disconnect", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not return a minute after the host stopped answering")
	}
}
