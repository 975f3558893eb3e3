package hypervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"
)

// ProbeMarker is what the probe guest's /init must print on its console.
const ProbeMarker = "FIBRIX-PROBE-OK"

// probeTimeout bounds one probe boot: the marker comes about 3 s after the
// start under TCG, sooner under KVM.
const probeTimeout = 60 * time.Second

// ProbeKVM boots a throw-away KVM guest on the host, from kernel and initrd
// (paths on the host; the initrd's /init prints ProbeMarker on the serial
// console and powers off), and reports whether it got that far. Only then
// may domains on this host use TypeKVM: some hosts expose /dev/kvm, and
// libvirt advertises KVM, yet normal guests hang silently or fail ("failed to
// set MSR"). When the answer is false, err says why.
//
// It runs through libvirt, not a local QEMU, so it works on remote hosts
// too; the guest has no disk or NIC and is gone afterwards.
func (c *Conn) ProbeKVM(ctx context.Context, kernel, initrd string) (bool, error) {
	if err := c.probeBoot(ctx, TypeKVM, kernel, initrd); err != nil {
		return false, err
	}
	return true, nil
}

// probeBoot boots a transient guest of the given type and waits for
// ProbeMarker on its console.
func (c *Conn) probeBoot(ctx context.Context, domType, kernel, initrd string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	id := uuid.New()
	x, err := DomainXML(DomainSpec{
		Name:      "fibrix-probe-" + id.String()[:8],
		UUID:      id.String(),
		VCPUs:     1,
		MemoryMiB: 256,
		Type:      domType,
		Kernel:    kernel,
		Initrd:    initrd,
		Cmdline:   "console=ttyS0 panic=-1 quiet",
	})
	if err != nil {
		return err
	}
	// Paused, so the console is attached before the guest prints.
	dom, err := do(ctx, func() (libvirt.Domain, error) {
		return c.lv.DomainCreateXML(string(x), libvirt.DomainStartPaused)
	})
	if err != nil {
		return fmt.Errorf("probe %s guest: start: %w", domType, err)
	}
	// A guest that printed the marker powers itself off; destroy whatever
	// is left, even when ctx has ended. Errors say it is gone already.
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		_ = do0(dctx, func() error { return c.lv.DomainDestroy(dom) })
	}()

	seen := &markerWriter{marker: []byte(ProbeMarker), found: make(chan struct{})}
	consoleDone := make(chan error, 1)
	go func() {
		consoleDone <- c.lv.DomainOpenConsole(dom, nil, seen, uint32(libvirt.DomainConsoleForce))
	}()
	// Give the console stream a moment to attach: QEMU drops console output
	// while nobody reads it.
	select {
	case err := <-consoleDone:
		return fmt.Errorf("probe %s guest: console: %w", domType, err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := do0(ctx, func() error { return c.lv.DomainResume(dom) }); err != nil {
		return fmt.Errorf("probe %s guest: resume: %w", domType, err)
	}
	select {
	case <-seen.found:
		return nil
	case err := <-consoleDone:
		select {
		case <-seen.found:
			return nil
		default:
		}
		if err == nil {
			err = errors.New("console closed")
		}
		return fmt.Errorf("probe %s guest ended without the marker: %w; console: %q", domType, err, seen.tail())
	case <-ctx.Done():
		return fmt.Errorf("probe %s guest: no marker: %w; console: %q", domType, ctx.Err(), seen.tail())
	}
}

// markerWriter watches a console stream for a marker and keeps the end of
// the output for error messages.
type markerWriter struct {
	marker []byte
	found  chan struct{}

	mu   sync.Mutex
	buf  []byte
	done bool
}

const consoleTail = 2048

func (w *markerWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if !w.done && bytes.Contains(w.buf, w.marker) {
		w.done = true
		close(w.found)
	}
	if len(w.buf) > consoleTail {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-consoleTail:]...)
	}
	return len(b), nil
}

func (w *markerWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
