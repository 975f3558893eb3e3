// Package tftpd serves the iPXE binaries over TFTP, read-only, so that the
// PXE ROMs of real servers, which speak only TFTP, can chain-load iPXE.
// It is the only package that imports pin/tftp.
package tftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/pin/tftp/v3"
)

const (
	// DefaultRoot is where Debian's ipxe package installs its binaries.
	DefaultRoot = "/usr/lib/ipxe"
	// DefaultBlockSize fills a 1500-byte Ethernet frame (1500 - 20 IP - 8 UDP - 4 TFTP).
	DefaultBlockSize = 1468
	// shutdownGrace bounds how long Serve waits for transfers in flight
	// after ctx is cancelled; a vanished client holds its transfer for the
	// library's retry timeout, which is much longer.
	shutdownGrace = 3 * time.Second
	// ipxeHint names the fix for a missing root or boot file.
	ipxeHint = "install the Debian package ipxe, or point --tftp-root at a directory with undionly.kpxe and ipxe.efi"
)

// Config is how the server behaves.
type Config struct {
	// Root is the directory of iPXE binaries; only regular files directly
	// inside it are served. Default DefaultRoot.
	Root string
	// BlockSize is the largest block size granted to a client that asks
	// for one (blksize, RFC 2348). Default DefaultBlockSize.
	BlockSize int
	// Require names files that must be in Root at start, such as the
	// boot files DHCP answers name: better refused at start than a
	// machine that cannot boot.
	Require []string
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return fmt.Errorf("tftpd: root: %w", err)
	}
	c.Root = root
	fi, err := os.Stat(c.Root)
	if err != nil {
		return fmt.Errorf("tftpd: root: %w (%s)", err, ipxeHint)
	}
	if !fi.IsDir() {
		return fmt.Errorf("tftpd: root %s is not a directory", c.Root)
	}
	for _, name := range c.Require {
		if fi, err := os.Stat(filepath.Join(c.Root, name)); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("tftpd: %s has no file %s, which DHCP hands to booting machines (%s)", c.Root, name, ipxeHint)
		}
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	// RFC 2348 bounds.
	if c.BlockSize < 512 || c.BlockSize > 65464 {
		return fmt.Errorf("tftpd: block size %d is outside 512..65464", c.BlockSize)
	}
	return nil
}

// Server answers TFTP read requests for the files in Config.Root.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New returns a server; cfg is validated here, once.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log.With("component", "tftpd")}, nil
}

// Serve answers on conn until ctx is cancelled. Serve owns conn and closes
// it. Transfers in flight are aborted at their next block when ctx is
// cancelled; Serve waits for them briefly.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	defer conn.Close()
	root, err := os.OpenRoot(s.cfg.Root)
	if err != nil {
		return fmt.Errorf("tftpd: %w", err)
	}
	defer root.Close()

	srv := tftp.NewServer(s.readHandler(ctx, root), s.writeHandler)
	// Without this, a request arriving before the library has switched on
	// its per-packet interface info falls back to 512-byte blocks; we
	// clamp to the configured size ourselves instead of to the MTU.
	srv.SetBlockSizeNegotiation(false)
	srv.SetBlockSize(s.cfg.BlockSize)
	srv.SetHook(hook{log: s.log})

	s.log.Info("tftp serving", "addr", conn.LocalAddr().String(), "root", s.cfg.Root, "blksize", s.cfg.BlockSize)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn) }()

	var serveErr error
	select {
	case serveErr = <-done:
		done = nil
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		srv.Shutdown()
		close(stopped)
	}()
	// Shutdown closes the connection only once the library has stored it;
	// closing it here too wakes a read that began before.
	conn.Close()
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case <-stopped:
	case <-grace.C:
		s.log.Warn("tftp transfers still in flight after shutdown grace; leaving them to time out")
	}
	if done != nil {
		select {
		case serveErr = <-done:
		case <-grace.C:
		}
	}
	if serveErr != nil && ctx.Err() == nil {
		return fmt.Errorf("tftpd: %w", serveErr)
	}
	s.log.Info("tftp stopped")
	return nil
}

// Errors sent to clients: short, and never a path on this machine.
var (
	errNotFound = errors.New("file not found")
	errAccess   = errors.New("access violation")
	errReadOnly = errors.New("access violation: read-only server")
)

func (s *Server) readHandler(ctx context.Context, root *os.Root) func(string, io.ReaderFrom) error {
	return func(name string, rf io.ReaderFrom) error {
		start := time.Now()
		log := s.log.With("file", name)
		ot, _ := rf.(tftp.OutgoingTransfer)
		if ot != nil {
			addr := ot.RemoteAddr()
			log = log.With("client", addr.String())
		}
		f, size, err := s.open(root, name)
		if err != nil {
			var re refusal
			if errors.As(err, &re) {
				log.Warn("tftp read refused", "reason", re.reason)
				return errAccess
			}
			log.Info("tftp read failed", "err", err)
			return errNotFound
		}
		defer f.Close()
		if ot != nil {
			// Wrapping f hides its Seek, which the library would use for tsize.
			ot.SetSize(size)
		}
		n, err := rf.ReadFrom(ctxReader{ctx: ctx, r: f})
		if err != nil {
			log.Warn("tftp transfer failed", "bytes", n, "duration", time.Since(start), "err", err)
			return nil // the library has already told the client
		}
		log.Info("tftp transfer", "bytes", n, "duration", time.Since(start))
		return nil
	}
}

func (s *Server) writeHandler(name string, wt io.WriterTo) error {
	log := s.log.With("file", name)
	if it, ok := wt.(tftp.IncomingTransfer); ok {
		addr := it.RemoteAddr()
		log = log.With("client", addr.String())
	}
	log.Warn("tftp write refused")
	return errReadOnly
}

// refusal is a request we will not serve on principle, as opposed to a
// file that is missing.
type refusal struct{ reason string }

func (r refusal) Error() string { return r.reason }

// open opens name for reading if it is a regular file directly inside the
// root. The iPXE binaries are also followed through symlinks that leave
// the root, because Debian installs ipxe.efi as a link to /boot/ipxe.efi.
func (s *Server) open(root *os.Root, name string) (*os.File, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	// O_NONBLOCK so that a FIFO cannot hang the transfer before the
	// regular-file check; it does not affect regular files.
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	var f *os.File
	var err error
	if isBinary(name) {
		f, err = os.OpenFile(filepath.Join(s.cfg.Root, name), flags, 0)
	} else {
		f, err = root.OpenFile(name, flags, 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			// os.Root refuses symlinks that leave the root.
			return nil, 0, refusal{reason: "outside the root: " + err.Error()}
		}
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, refusal{reason: "not a regular file"}
	}
	return f, fi.Size(), nil
}

// checkName refuses every name that is not one plain file name.
func checkName(name string) error {
	switch {
	case name == "":
		return refusal{reason: "empty file name"}
	case len(name) > 255:
		return refusal{reason: "file name too long"}
	case strings.ContainsRune(name, 0):
		return refusal{reason: "NUL in file name"}
	case strings.ContainsRune(name, '\\'):
		return refusal{reason: "backslash in file name"}
	case strings.HasPrefix(name, "/"):
		return refusal{reason: "absolute path"}
	case name == "." || name == ".." || strings.Contains(name, ".."):
		return refusal{reason: "path traversal"}
	case strings.ContainsRune(name, '/'):
		return refusal{reason: "not directly inside the root"}
	}
	for _, r := range name {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return refusal{reason: "unprintable file name"}
		}
	}
	return nil
}

// isBinary reports whether name is one of the iPXE binaries the DHCP server
// hands out.
func isBinary(name string) bool {
	switch name {
	case "undionly.kpxe", "ipxe.efi", "snponly.efi":
		return true
	}
	return false
}

// ctxReader ends a transfer at its next block once ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, errors.New("server shutting down")
	}
	return c.r.Read(p)
}

// hook logs requests the library rejects before any handler runs
// (malformed packets, unexpected opcodes). Failures of transfers are
// logged by the handlers, with more detail.
type hook struct{ log *slog.Logger }

func (h hook) OnSuccess(tftp.TransferStats) {}

func (h hook) OnFailure(st tftp.TransferStats, err error) {
	if st.Filename != "" {
		return
	}
	h.log.Warn("tftp request rejected", "err", err)
}
