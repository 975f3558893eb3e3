package main

import (
	"context"
	"errors"
	"io"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/lifecycle"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// consoleOpener opens VM consoles for the portal in a process that also
// runs the provisioner: it holds the SSH key qemu+ssh hosts accept. Each
// session has a libvirt connection (and SSH client) of its own.
type consoleOpener struct {
	st     *store.Store
	signer ssh.Signer
}

func (o consoleOpener) OpenConsole(ctx context.Context, vmID string) (io.ReadWriteCloser, error) {
	vm, err := o.st.GetVM(ctx, "", vmID)
	if err != nil {
		return nil, err
	}
	if vm.HostID == nil {
		return nil, store.E(store.ErrInvalidTransition, "", "the VM has no host yet")
	}
	h, err := o.st.GetHost(ctx, *vm.HostID)
	if err != nil {
		return nil, err
	}
	if h.SSHHostKey == "" && len(h.URI) > 9 && h.URI[:9] == "qemu+ssh:" {
		return nil, store.E(store.ErrConflict, "", "the VM's host key is not known yet; try again in a minute")
	}
	con, err := hypervisor.OpenConsole(ctx, hypervisor.Config{URI: h.URI, HostKey: h.SSHHostKey, Signer: o.signer, Timeout: 20 * time.Second},
		lifecycle.DomainName(vm.ID))
	switch {
	case errors.Is(err, hypervisor.ErrConsoleBusy):
		return nil, store.E(store.ErrConflict, "", "another session holds this VM's console; close it or wait until it ends")
	case errors.Is(err, hypervisor.ErrNotRunning), errors.Is(err, hypervisor.ErrNotFound):
		return nil, store.E(store.ErrInvalidTransition, "", "the VM is not running on its host")
	}
	return con, err
}
