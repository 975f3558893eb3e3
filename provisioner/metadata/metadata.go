// Package metadata serves cloud-init's NoCloud datasource to VMs: each VM
// reads its hostname, its tenant's chosen SSH keys, its user-data and its
// network configuration under a per-VM secret token, and only from its own
// address.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Config is how the metadata service behaves.
type Config struct {
	// Listen is the address cmd/ opens the listener on; Serve itself takes
	// a listener.
	Listen string
	// Zone is the DNS zone VMs are named in: <vm>.<tenant>.<Zone>.
	Zone string
	// DefaultUser is the image's default cloud-init user, who receives the
	// SSH keys ("debian" on Debian cloud images).
	DefaultUser string
	// AllowAnySource turns off the check that a request comes from the VM's
	// own allocated address. The token alone then guards the data. Turn it
	// on only when guests reach the service through NAT, so that their
	// source address is not their own.
	AllowAnySource bool
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	c.Zone = strings.Trim(strings.TrimSpace(c.Zone), ".")
	if c.Zone == "" {
		return errors.New("metadata: zone is empty")
	}
	if c.DefaultUser == "" {
		c.DefaultUser = "debian"
	}
	if strings.ContainsAny(c.DefaultUser, " \t\r\n:") {
		return fmt.Errorf("metadata: default user %q is not a user name", c.DefaultUser)
	}
	return nil
}

// Store is what the service needs from the database.
type Store interface {
	MetadataByToken(ctx context.Context, token string) (store.Metadata, error)
}

// Server answers cloud-init's requests.
type Server struct {
	cfg Config
	st  Store
	log *slog.Logger
}

// New returns a server; cfg is validated here, once.
func New(cfg Config, st Store, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, st: st, log: log.With("component", "metadata")}, nil
}

// Serve answers on ln until ctx is cancelled, then lets requests in flight
// finish (for up to five seconds).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metadata: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("metadata: shut down: %w", err)
	}
	return nil
}

// The documents cloud-init asks for, and what renders each one.
const (
	docMetaData      = "meta-data"
	docUserData      = "user-data"
	docVendorData    = "vendor-data"
	docNetworkConfig = "network-config"
)

// Handler routes GET /{token}/{document}; it is the whole HTTP surface.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	token, doc, ok := splitPath(r.URL.Path)
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	src := remote.Addr().Unmap()
	// The token never reaches a log line: it is the VM's credential.
	log := s.log.With("document", doc, "remote", src.String())
	if !validToken(token) {
		log.Info("metadata request with a malformed token")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	m, err := s.st.MetadataByToken(r.Context(), token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.Info("metadata request with an unknown token")
		http.Error(w, "not found", http.StatusNotFound)
		return
	case err != nil:
		log.Error("metadata lookup failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	log = log.With("vm", m.VMID)
	if !s.cfg.AllowAnySource && (m.Address == nil || m.Address.Addr.Unmap() != src) {
		log.Warn("metadata request refused: not from the VM's address")
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	var body []byte
	ctype := "text/plain; charset=utf-8"
	switch doc {
	case docMetaData:
		body = metaData(m)
	case docUserData:
		body, ctype, err = s.userData(m)
	case docVendorData:
		body = nil
	case docNetworkConfig:
		if m.Address == nil || m.MAC == "" {
			http.Error(w, "no network configuration yet", http.StatusNotFound)
			return
		}
		body = NetworkConfig(m)
	}
	if err != nil {
		log.Error("render metadata", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	log.Debug("metadata served")
}

// splitPath accepts exactly /{token}/{document}.
func splitPath(p string) (token, doc string, ok bool) {
	rest, found := strings.CutPrefix(p, "/")
	if !found {
		return "", "", false
	}
	token, doc, found = strings.Cut(rest, "/")
	if !found || token == "" {
		return "", "", false
	}
	switch doc {
	case docMetaData, docUserData, docVendorData, docNetworkConfig:
		return token, doc, true
	}
	return "", "", false
}

// validToken rejects what the store never issues (base64url, 43 characters
// today) before it costs a query.
func validToken(t string) bool {
	if len(t) < 22 || len(t) > 128 {
		return false
	}
	for _, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
