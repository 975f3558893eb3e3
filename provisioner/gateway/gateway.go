// Package gateway is the SSH jump host customers reach their VMs through
// (ssh -J <tenant>@<gateway> user@<vm>.<tenant>.<zone>): it authenticates the
// customer with their tenant's keys and relays bytes to port 22 of that
// tenant's running VMs, never holding a key that opens a VM.
package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Store is what the gateway needs from the database.
type Store interface {
	GatewayAuth(ctx context.Context, tenantSlug, fingerprint string) (store.GatewayIdentity, error)
	GatewayTarget(ctx context.Context, tenantID, host, zone string) (netip.Addr, string, error)
	GatewayRevoked(ctx context.Context, keyIDs []string) (map[string]string, error)
	RecordAudit(ctx context.Context, a store.Actor, action string, t *store.Target, result, detail string) error
}

// Config is the gateway's configuration; zero values take the defaults.
type Config struct {
	Listen string // informational; Serve takes the listener
	Zone   string // the region zone VM names live under, e.g. "cloud.example.net"
	// HostKeyPEM is the gateway's private host key (OpenSSH PEM). It must be
	// persistent so customers' known_hosts keep matching: cmd keeps it in the
	// database (see GenerateHostKey).
	HostKeyPEM                 []byte
	MaxConns                   int           // 256: connections at once
	MaxConnsPerIP              int           // 16: connections at once from one source address
	AuthFailuresPerIPPerMinute int           // 20: failed logins from one address in any 60 s
	IdleTimeout                time.Duration // 1 h without a byte either way closes a connection
	DialTimeout                time.Duration // 5 s to reach a VM
	HandshakeTimeout           time.Duration // 10 s from accept to signed in
	TargetPort                 int           // 22: the only VM port a jump may reach
	// Recheck is how often open connections are checked against their key
	// and tenant: a removed key or a suspended tenant ends them; 2 s.
	Recheck time.Duration
}

// Audit actions.
const (
	ActionLogin   = "gateway.login"
	ActionChannel = "gateway.channel"
	ActionEnded   = "gateway.disconnect"
)

// maxChannelsPerConn bounds the relays one signed-in connection may hold open.
const maxChannelsPerConn = 64

// maxAuthTries bounds the authentication attempts of one connection, the
// offered keys included.
const maxAuthTries = 6

// auditTimeout bounds one audit write, so a slow database cannot hold a
// connection's goroutines forever.
const auditTimeout = 5 * time.Second

// Server is the SSH gateway.
type Server struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	signer  ssh.Signer
	limiter *limiter

	mu       sync.Mutex
	sessions map[*session]struct{}
}

// New checks the configuration and loads the host key.
func New(cfg Config, st Store, log *slog.Logger) (*Server, error) {
	if st == nil {
		return nil, errors.New("gateway needs a store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.HostKeyPEM) == 0 {
		return nil, errors.New("gateway needs a host key")
	}
	signer, err := ssh.ParsePrivateKey(cfg.HostKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse gateway host key: %w", err)
	}
	if cfg.Zone == "" {
		return nil, errors.New("gateway needs the zone VM names live under")
	}
	defaults := []struct {
		v   *int
		def int
	}{{&cfg.MaxConns, 256}, {&cfg.MaxConnsPerIP, 16}, {&cfg.AuthFailuresPerIPPerMinute, 20}, {&cfg.TargetPort, 22}}
	for _, d := range defaults {
		if *d.v < 0 {
			return nil, errors.New("gateway limits must not be negative")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.TargetPort > 65535 {
		return nil, fmt.Errorf("gateway target port %d is out of range", cfg.TargetPort)
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.IdleTimeout, time.Hour}, {&cfg.DialTimeout, 5 * time.Second}, {&cfg.HandshakeTimeout, 10 * time.Second}, {&cfg.Recheck, 2 * time.Second}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	return &Server{cfg: cfg, st: st, log: log, signer: signer, sessions: map[*session]struct{}{},
		limiter: newLimiter(cfg.MaxConns, cfg.MaxConnsPerIP, cfg.AuthFailuresPerIPPerMinute, time.Minute)}, nil
}

// GenerateHostKey makes a new ed25519 host key in OpenSSH PEM form, for cmd
// to store once and hand to every later start.
func GenerateHostKey() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "fibrix ssh gateway")
	if err != nil {
		return nil, fmt.Errorf("encode host key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// HostKeyFingerprint is the host key's fingerprint as ssh-keygen -lf and
// the OpenSSH client show it ("SHA256:…"), for customers to check.
func (s *Server) HostKeyFingerprint() string { return ssh.FingerprintSHA256(s.signer.PublicKey()) }

// HostKey is the public host key as a known_hosts key ("ssh-ed25519 AAAA…").
func (s *Server) HostKey() ssh.PublicKey { return s.signer.PublicKey() }

// Serve accepts connections on ln until ctx is cancelled; then it stops
// accepting, closes the open connections (relayed SSH sessions end) and
// returns nil once every connection's goroutines are done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	wg.Go(func() {
		<-ctx.Done()
		_ = ln.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
	})
	wg.Go(func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.limiter.sweep()
			}
		}
	})
	wg.Go(func() {
		t := time.NewTicker(s.cfg.Recheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.recheck(ctx)
			}
		}
	})
	s.log.InfoContext(ctx, "ssh gateway listening", "addr", ln.Addr().String(), "host_key", s.HostKeyFingerprint())
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			break
		}
		ip := sourceIP(c.RemoteAddr())
		release, why := s.limiter.admit(ip)
		if why != "" {
			s.log.WarnContext(ctx, "ssh gateway connection refused", "ip", ip, "reason", why)
			_ = c.Close()
			continue
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = c.Close()
			release()
			break
		}
		open[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				_ = c.Close()
				release()
			}()
			s.handle(ctx, c, ip)
		})
	}
	cancel()
	wg.Wait()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("ssh gateway accept: %w", err)
}

func sourceIP(a net.Addr) string {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// audit records an entry on its own deadline: the request that caused it
// may already be gone.
func (s *Server) audit(a store.Actor, action string, t *store.Target, result, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	if err := s.st.RecordAudit(ctx, a, action, t, result, detail); err != nil {
		s.log.Error("record gateway audit entry", "action", action, "err", err)
	}
}

// recheck ends the open connections whose key was removed or whose tenant
// was suspended since they signed in. A database that does not answer ends
// nothing; the next round asks again.
func (s *Server) recheck(ctx context.Context) {
	s.mu.Lock()
	byKey := map[string][]*session{}
	for ss := range s.sessions {
		byKey[ss.keyID] = append(byKey[ss.keyID], ss)
	}
	s.mu.Unlock()
	if len(byKey) == 0 {
		return
	}
	ids := make([]string, 0, len(byKey))
	for id := range byKey {
		ids = append(ids, id)
	}
	qctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	revoked, err := s.st.GatewayRevoked(qctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "gateway could not recheck open connections", "connections", len(ids), "err", err)
		}
		return
	}
	for id, reason := range revoked {
		for _, ss := range byKey[id] {
			ss.end(reason)
		}
	}
}
