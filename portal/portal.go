// Package portal is the internet-facing half of Fibrix: customer pages, the
// staff admin panel and the JSON API. It records desired state and queued
// operations in the store and never touches hardware.
package portal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/provisioner/secret"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Config is what the portal needs to know, validated once by main.
type Config struct {
	// PublicURL is where people reach the portal, used in invitation links.
	PublicURL string
	// SecureCookies marks cookies Secure; set it when served over HTTPS.
	SecureCookies bool
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// PasswordCost is the bcrypt cost of password hashes.
	PasswordCost int
	// TrustProxy takes the client address from X-Forwarded-For.
	TrustProxy bool
	// Version is shown in /healthz and the footer.
	Version string
	// Zone is the DNS zone VM names live in: <vm>.<tenant slug>.<zone>.
	Zone string
	// ForwardPortMin and ForwardPortMax bound the public ports customers
	// may forward to their VMs.
	ForwardPortMin, ForwardPortMax int
	// GatewayAddress is the host[:port] customers reach the SSH gateway at.
	GatewayAddress string
	// PublicAddress is the ISP's public address, shown with port forwards.
	PublicAddress string
	// Mailer sends email. With one, a sign-up finishes only from the link
	// sent to its address, and every sign-up answers the same whether the
	// address has an account or not; without one, sign-up creates the
	// account at once.
	Mailer mailer.Sender
	// ReadTimeout bounds reading one request, headers and body, so a client
	// sending slowly cannot hold a connection; default 30 s.
	ReadTimeout time.Duration
	// MaxConnsPerIP caps the connections one client address (IPv4 or IPv6)
	// holds at once (further ones are answered 429 and closed); default 128,
	// none when TrustProxy is set, since every client then arrives from the
	// proxy.
	MaxConnsPerIP int
	// Consoles opens VMs' serial consoles; nil in a process without the
	// provisioner role, where the console answers 503.
	Consoles Consoles
	// ConsoleIdle closes a console session after this long without input;
	// default 15 minutes.
	ConsoleIdle time.Duration
}

// Validate fills defaults and refuses nonsense.
func (c *Config) Validate() error {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		return errors.New("session ttl must be between 1 minute and 30 days")
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.ConsoleIdle == 0 {
		c.ConsoleIdle = 15 * time.Minute
	}
	if c.ConsoleIdle < 0 {
		return errors.New("console idle timeout must be positive")
	}
	if c.ReadTimeout < 0 {
		return errors.New("read timeout must be positive")
	}
	if c.MaxConnsPerIP == 0 && !c.TrustProxy {
		c.MaxConnsPerIP = 128
	}
	if c.MaxConnsPerIP < 0 {
		return errors.New("connections per address cannot be negative")
	}
	if c.PasswordCost == 0 {
		c.PasswordCost = 12
	}
	if c.PasswordCost < 4 || c.PasswordCost > 16 {
		return errors.New("password cost must be between 4 and 16")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://127.0.0.1:8080"
	}
	c.Zone = strings.Trim(strings.ToLower(strings.TrimSpace(c.Zone)), ".")
	if c.Zone == "" {
		c.Zone = "cloud.internal"
	}
	for _, label := range strings.Split(c.Zone, ".") {
		if store.ValidHostname(label) != nil {
			return fmt.Errorf("zone %q: each label must be 1–63 lower-case letters, digits and dashes", c.Zone)
		}
	}
	if c.ForwardPortMin == 0 && c.ForwardPortMax == 0 {
		c.ForwardPortMin, c.ForwardPortMax = 20000, 20999
	}
	if c.ForwardPortMin < 1 || c.ForwardPortMax > 65535 || c.ForwardPortMin > c.ForwardPortMax {
		return fmt.Errorf("port forward range %d–%d is not a range of TCP ports", c.ForwardPortMin, c.ForwardPortMax)
	}
	c.GatewayAddress = strings.TrimSpace(c.GatewayAddress)
	if c.GatewayAddress == "" {
		c.GatewayAddress = "127.0.0.1:2222"
	}
	if strings.ContainsAny(c.GatewayAddress, " \t/@") {
		return fmt.Errorf("gateway address %q must be host or host:port", c.GatewayAddress)
	}
	c.PublicAddress = strings.TrimSpace(c.PublicAddress)
	if c.PublicAddress == "" {
		c.PublicAddress = "127.0.0.1"
	}
	if _, err := netip.ParseAddr(c.PublicAddress); err != nil && strings.ContainsAny(c.PublicAddress, " \t/@:[]") {
		return fmt.Errorf("public address %q must be a host name or IP address without a port", c.PublicAddress)
	}
	return nil
}

// Server serves the portal.
type Server struct {
	cfg    Config
	store  *store.Store
	log    *slog.Logger
	jwtKey []byte
	// dummyHash is compared against when an email is unknown.
	dummyHash []byte
	limiter   *limiter
	metrics   *metrics
	app       *fiber.App
	// secrets seals BMC passwords before they reach the store. Its key is
	// kept in the database beside the data it protects: a stolen backup
	// holds both. A key file outside the database would fix that.
	secrets *secret.Box
	// totp seals users' authenticator secrets, under a key of its own.
	totp *secret.Box
	// consoles counts the open console sessions per VM.
	consoles consoleSessions
}

// New builds the portal on top of a migrated store.
func New(ctx context.Context, cfg Config, st *store.Store, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := st.Secret(ctx, "session_signing_key", func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.RawStdEncoding.EncodeToString(b)
	})
	if err != nil {
		return nil, fmt.Errorf("load session key: %w", err)
	}
	rawKey, err := base64.RawStdEncoding.DecodeString(key)
	if err != nil || len(rawKey) < 32 {
		return nil, errors.New("session signing key in the database is damaged")
	}
	dummy, err := bcrypt.GenerateFromPassword(rawKey[:16], cfg.PasswordCost)
	if err != nil {
		return nil, fmt.Errorf("prepare password check: %w", err)
	}
	box, err := secret.SharedBox(ctx, st, secret.BMCKeySetting)
	if err != nil {
		return nil, err
	}
	totpBox, err := secret.SharedBox(ctx, st, secret.TOTPKeySetting)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, log: log, jwtKey: rawKey, dummyHash: dummy, limiter: newLimiter(), metrics: newMetrics(), secrets: box, totp: totpBox}
	s.app = s.routes()
	if w := cfg.sharedSite(); w != "" {
		log.Warn("the portal shares a site with customers' services: "+w+"; serve the portal on a host name of its own",
			"public_url", cfg.PublicURL, "public_address", cfg.PublicAddress, "zone", cfg.Zone)
	}
	return s, nil
}

// sharedSite explains how customers' port forwards or web routes could be
// on the portal's own host name, or returns "". Browsers treat every port of
// a host as one site, so a customer's page there is same-site with the portal.
func (c Config) sharedSite() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	pub := strings.ToLower(c.PublicAddress)
	switch {
	case pub != "" && host == pub:
		return "its host " + host + " is the public address of port forwards"
	case c.Zone != "" && (host == c.Zone || strings.HasSuffix(host, "."+c.Zone)):
		return "its host " + host + " is inside the customers' zone " + c.Zone
	}
	return ""
}

// App exposes the HTTP handler, for tests.
func (s *Server) App() *fiber.App { return s.app }

// Serve listens on ln until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	ln = capPerAddress(ln, s.cfg.MaxConnsPerIP)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		if err := s.app.ShutdownWithTimeout(10 * time.Second); err != nil {
			return fmt.Errorf("portal shutdown: %w", err)
		}
		return nil
	}
}
