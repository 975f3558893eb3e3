package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Permissions extensions: the identity travels with the key that proved
// it, never in per-connection state (PublicKeyCallback also runs for keys a
// client only offers).
const (
	extTenantID   = "fibrix-tenant-id"
	extTenantSlug = "fibrix-tenant-slug"
	extKeyID      = "fibrix-key-id"
	extKeyName    = "fibrix-key-name"
	extSuspended  = "fibrix-suspended"
)

// login is what one connection's authentication went through, for the
// audit entry written when it ends.
type login struct {
	mu       sync.Mutex
	user     string
	attempts int
	reasons  []string
	tenantID string
}

func (l *login) note(user, reason, tenantID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.user = user
	if reason != "" && len(l.reasons) < maxAuthTries+2 {
		l.reasons = append(l.reasons, reason)
	}
	if tenantID != "" {
		l.tenantID = tenantID
	}
}

func (s *Server) serverConfig(ctx context.Context, ip string, l *login) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		MaxAuthTries:  maxAuthTries,
		ServerVersion: "SSH-2.0-Fibrix",
		PublicKeyCallback: func(cm ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			fp := ssh.FingerprintSHA256(key)
			id, err := s.st.GatewayAuth(ctx, cm.User(), fp)
			switch {
			case err == nil:
				return identityPerms(id), nil
			case errors.Is(err, store.ErrSuspended):
				// Refused only once the client proves it holds the key, so
				// the reason reaches the customer and nobody else.
				p := identityPerms(id)
				p.Extensions[extSuspended] = safeMessage(err)
				return p, nil
			case errors.Is(err, store.ErrNotFound):
				l.note(cm.User(), fmt.Sprintf("%s key %s is not a key of tenant %q", key.Type(), fp, cm.User()), "")
				return nil, errors.New("unknown key")
			default:
				s.log.ErrorContext(ctx, "gateway key lookup", "ip", ip, "err", err)
				l.note(cm.User(), "key lookup failed", "")
				return nil, err
			}
		},
		VerifiedPublicKeyCallback: func(cm ssh.ConnMetadata, key ssh.PublicKey, p *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			if reason := p.Extensions[extSuspended]; reason != "" {
				l.note(cm.User(), reason, p.Extensions[extTenantID])
				return nil, &ssh.BannerError{Err: store.ErrSuspended, Message: "Fibrix: " + reason + "\r\n"}
			}
			return p, nil
		},
		AuthLogCallback: func(cm ssh.ConnMetadata, method string, err error) {
			if method == "none" {
				l.note(cm.User(), "", "")
				return
			}
			l.mu.Lock()
			l.attempts++
			l.mu.Unlock()
			if err != nil && method != "publickey" {
				l.note(cm.User(), method+" authentication is not offered; use an SSH key of the tenant", "")
			}
		},
	}
	cfg.AddHostKey(s.signer)
	return cfg
}

func identityPerms(id store.GatewayIdentity) *ssh.Permissions {
	return &ssh.Permissions{Extensions: map[string]string{
		extTenantID: id.TenantID, extTenantSlug: id.TenantSlug, extKeyID: id.KeyID, extKeyName: id.KeyName,
	}}
}

// safeMessage is the part of a store error that may be shown to the client.
func safeMessage(err error) string {
	if e, ok := store.AsError(err); ok {
		return e.Message
	}
	return "internal error"
}

// session is one signed-in connection.
type session struct {
	s        *Server
	ip       string
	tenantID string
	slug     string
	keyID    string
	keyName  string
	channels atomic.Int32
	close    func()
	ended    sync.Once
}

// end closes the connection for reason (the key was removed, the tenant
// suspended): its relays end with it.
func (ss *session) end(reason string) {
	ss.ended.Do(func() {
		ss.s.log.Info("gateway connection ended", "ip", ss.ip, "tenant", ss.slug, "key", ss.keyName, "reason", reason)
		ss.s.audit(store.Actor{TenantID: ss.tenantID, IP: ss.ip}, ActionEnded,
			&store.Target{Type: "ssh_key", ID: ss.keyID, Name: ss.keyName, TenantID: ss.tenantID}, store.ResultSuccess, reason)
		ss.close()
	})
}

func (s *Server) handle(ctx context.Context, c net.Conn, ip string) {
	ic := &idleConn{Conn: c, idle: s.cfg.IdleTimeout}
	_ = c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	l := &login{}
	sc, chans, reqs, err := ssh.NewServerConn(ic, s.serverConfig(ctx, ip, l))
	if err != nil {
		s.loginFailed(ctx, ip, l, err)
		return
	}
	defer sc.Close()
	// The connection's reader is already blocked in Read: give it the idle
	// deadline directly; later reads and writes extend it themselves.
	ic.armed.Store(true)
	_ = c.SetWriteDeadline(time.Time{})
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))

	p := sc.Permissions.Extensions
	ss := &session{s: s, ip: ip, tenantID: p[extTenantID], slug: p[extTenantSlug], keyID: p[extKeyID], keyName: p[extKeyName],
		close: func() { _ = sc.Close() }}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
	}()
	log := s.log.With("ip", ip, "tenant", ss.slug, "key", ss.keyName)
	log.InfoContext(ctx, "gateway login", "client", string(sc.ClientVersion()))
	s.audit(store.Actor{TenantID: ss.tenantID, IP: ip}, ActionLogin,
		&store.Target{Type: "ssh_key", ID: p[extKeyID], Name: ss.keyName, TenantID: ss.tenantID}, store.ResultSuccess,
		fmt.Sprintf("user %s, client %s", sc.User(), sc.ClientVersion()))

	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { ss.globalRequests(reqs) })
	// Channels are handled side by side: one VM slow to answer must not
	// hold up the customer's other jumps over the same connection.
	for nc := range chans {
		wg.Go(func() { ss.channel(connCtx, nc) })
	}
	cancel()
}

func (s *Server) loginFailed(ctx context.Context, ip string, l *login, err error) {
	l.mu.Lock()
	user, attempts, reasons, tenantID := l.user, l.attempts, l.reasons, l.tenantID
	l.mu.Unlock()
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	if user == "" && !timedOut {
		// A port probe or a client that gave up before naming a user is
		// not a login.
		s.log.DebugContext(ctx, "gateway handshake failed", "ip", ip, "err", err)
		return
	}
	if attempts > 0 || timedOut {
		s.limiter.fail(ip)
	}
	detail := strings.Join(reasons, "; ")
	switch {
	case timedOut:
		detail = strings.TrimPrefix(detail+"; not signed in within "+s.cfg.HandshakeTimeout.String(), "; ")
	case detail == "":
		detail = "no acceptable key offered"
	}
	if user != "" {
		detail = fmt.Sprintf("user %q: %s", user, detail)
	}
	s.log.InfoContext(ctx, "gateway login refused", "ip", ip, "user", user, "reason", detail)
	s.audit(store.Actor{TenantID: tenantID, IP: ip}, ActionLogin, &store.Target{Type: "gateway_user", Name: user, TenantID: tenantID},
		store.ResultFailure, detail)
}

// globalRequests refuses everything: remote forwarding (tcpip-forward and
// the unix socket variant) would let a customer listen on the gateway.
func (ss *session) globalRequests(reqs <-chan *ssh.Request) {
	for r := range reqs {
		switch r.Type {
		case "tcpip-forward", "streamlocal-forward@openssh.com":
			ss.refuse(r.Type, "", "remote forwarding ("+r.Type+") is not offered by the gateway")
		}
		if r.WantReply {
			_ = r.Reply(false, nil)
		}
	}
}

func (ss *session) refuse(kind, target, reason string) {
	ss.s.log.Info("gateway channel refused", "ip", ss.ip, "tenant", ss.slug, "type", kind, "target", target, "reason", reason)
	ss.s.audit(store.Actor{TenantID: ss.tenantID, IP: ss.ip}, ActionChannel,
		&store.Target{Type: kind, Name: target, TenantID: ss.tenantID}, store.ResultFailure, reason)
}

// directTCPIP is the payload of a "direct-tcpip" channel open (RFC 4254 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// parseDirectTCPIP reads the target of a direct-tcpip request.
func parseDirectTCPIP(payload []byte) (host string, port int, err error) {
	var m directTCPIP
	if err := ssh.Unmarshal(payload, &m); err != nil {
		return "", 0, errors.New("malformed direct-tcpip request")
	}
	switch {
	case m.Host == "" || len(m.Host) > 255:
		return "", 0, errors.New("the target host name is empty or too long")
	case m.Port == 0 || m.Port > 65535:
		return "", 0, fmt.Errorf("target port %d is out of range", m.Port)
	}
	return m.Host, int(m.Port), nil
}

// channel refuses or relays one channel; a relay returns when it ends.
func (ss *session) channel(ctx context.Context, nc ssh.NewChannel) {
	s := ss.s
	reject := func(kind ssh.RejectionReason, typ, target, reason string) {
		ss.refuse(typ, target, reason)
		_ = nc.Reject(kind, "Fibrix: "+reason)
	}
	if nc.ChannelType() != "direct-tcpip" {
		reject(ssh.Prohibited, nc.ChannelType(), "", fmt.Sprintf(
			"%s channels are refused; the gateway only relays to your VMs: ssh -J %s@<gateway> <user>@<vm>.%s.%s",
			nc.ChannelType(), ss.slug, ss.slug, s.cfg.Zone))
		return
	}
	host, port, err := parseDirectTCPIP(nc.ExtraData())
	if err != nil {
		reject(ssh.Prohibited, "direct-tcpip", "", err.Error())
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(port))
	if port != s.cfg.TargetPort {
		reject(ssh.Prohibited, "direct-tcpip", target, fmt.Sprintf("only port %d of your VMs can be reached through the gateway", s.cfg.TargetPort))
		return
	}
	if n := ss.channels.Add(1); n > maxChannelsPerConn {
		ss.channels.Add(-1)
		reject(ssh.ResourceShortage, "direct-tcpip", target, fmt.Sprintf("at most %d relays per connection", maxChannelsPerConn))
		return
	}
	release := func() { ss.channels.Add(-1) }
	lookup, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	ip, vm, err := s.st.GatewayTarget(lookup, ss.tenantID, host, s.cfg.Zone)
	cancel()
	if err != nil {
		release()
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrSuspended) {
			s.log.ErrorContext(ctx, "gateway target lookup", "ip", ss.ip, "tenant", ss.slug, "target", target, "err", err)
		}
		reject(ssh.Prohibited, "direct-tcpip", target, safeMessage(err))
		return
	}
	addr := netip.AddrPortFrom(ip, uint16(s.cfg.TargetPort)).String()
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	up, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		release()
		s.log.InfoContext(ctx, "gateway dial", "vm", vm, "addr", addr, "err", err)
		reject(ssh.ConnectionFailed, "direct-tcpip", target, fmt.Sprintf("VM %s does not answer on port %d", vm, s.cfg.TargetPort))
		return
	}
	ch, chReqs, err := nc.Accept()
	if err != nil {
		release()
		_ = up.Close()
		return
	}
	s.audit(store.Actor{TenantID: ss.tenantID, IP: ss.ip}, ActionChannel,
		&store.Target{Type: "vm", Name: vm, TenantID: ss.tenantID}, store.ResultSuccess,
		fmt.Sprintf("relay to %s (asked for %s)", addr, target))
	defer release()
	relay(ctx, ch, chReqs, up)
}

// relay copies bytes both ways until both directions are done, passing
// half-closes along; the gateway sees only the customer's encrypted stream.
func relay(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request, up net.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = up.Close(); _ = ch.Close() })
	defer stop()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(up, ch)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = up.Close()
		}
	})
	_, _ = io.Copy(ch, up)
	_ = ch.CloseWrite()
	// The VM is done; a client that never sends EOF must not hold the relay.
	_ = ch.Close()
	wg.Wait()
	_ = up.Close()
}

// idleConn closes a signed-in connection that moved no byte for idle.
type idleConn struct {
	net.Conn
	idle  time.Duration
	armed atomic.Bool // false during the handshake, which has its own deadline
}

func (c *idleConn) Read(b []byte) (int, error) {
	if c.armed.Load() {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	if c.armed.Load() {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Write(b)
}
