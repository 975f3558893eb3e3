package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// identity is who made a request, set by the authentication middleware.
type identity struct {
	User   store.User
	Tenant *store.Tenant // nil for staff
	// Scope limits what a bearer token may do; sessions have ScopeWrite.
	Scope string
	// SessionID names the server-side session; "" for API tokens.
	SessionID string
	// TwoFactorMissing marks a staff account without a second factor
	// while staff must have one: it may only enrol, not use the panel.
	TwoFactorMissing bool
}

func (id *identity) staff() bool { return id != nil && id.User.IsStaff() }

func (id *identity) canWriteTenant() bool {
	return id != nil && !id.staff() && id.Scope == store.ScopeWrite &&
		(id.User.Role == store.RoleOwner || id.User.Role == store.RoleMember)
}

func (id *identity) canOperate() bool {
	return id.staff() && id.Scope == store.ScopeWrite && (id.User.Role == store.RoleAdmin || id.User.Role == store.RoleOperator)
}

func (id *identity) canAdmin() bool {
	return id.staff() && id.Scope == store.ScopeWrite && id.User.Role == store.RoleAdmin
}

const (
	localIdentity  = "identity"
	localRequestID = "request_id"
	localLogger    = "logger"
	localCSRF      = "csrf"
)

func who(c *fiber.Ctx) *identity {
	id, _ := c.Locals(localIdentity).(*identity)
	return id
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

func (s *Server) logger(c *fiber.Ctx) *slog.Logger {
	if l, ok := c.Locals(localLogger).(*slog.Logger); ok {
		return l
	}
	return s.log
}

func (s *Server) actor(c *fiber.Ctx) store.Actor {
	a := store.Actor{IP: c.IP()}
	if id := who(c); id != nil {
		a.UserID, a.Email, a.TenantID = id.User.ID, id.User.Email, id.User.Tenant()
	}
	return a
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// observe assigns a request id, logs the request once and counts it.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	rid := strings.Clone(c.Get("X-Request-Id")) // outlives the request buffer in logs
	if rid == "" || len(rid) > 64 || strings.ContainsFunc(rid, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		rid = randomString(9)
	}
	c.Locals(localRequestID, rid)
	log := s.log.With("request_id", rid)
	c.Locals(localLogger, log)
	c.Set("X-Request-Id", rid)
	err := c.Next()
	if err != nil {
		if herr := s.handleError(c, err); herr != nil {
			log.Error("write error response", "err", herr)
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	s.metrics.observe(c.Method(), route, status, time.Since(start))
	attrs := []any{"method", c.Method(), "path", c.Path(), "route", route, "status", status,
		"duration_ms", time.Since(start).Milliseconds(), "ip", c.IP()}
	if id := who(c); id != nil {
		attrs = append(attrs, "user", id.User.ID)
		if t := id.User.Tenant(); t != "" {
			attrs = append(attrs, "tenant", t)
		}
	}
	level := slog.LevelInfo
	switch {
	case status == fiber.StatusServiceUnavailable:
		level = slog.LevelWarn // the database is away; handleError said why
	case status >= 500:
		level = slog.LevelError
	}
	log.Log(c.UserContext(), level, "request", attrs...)
	return nil
}

// Request bodies: the server reads none larger than maxBody (a bigger
// Content-Length is refused before the body is read); each route then takes
// at most routeBody, except the few that carry more.
const (
	maxBody   = 1 << 20
	routeBody = 64 << 10
)

// largeBodies are the routes that may take up to maxBody: the boot agent's
// report carries a server's whole inventory and its log.
var largeBodies = map[string]bool{"/api/agent/v1/report": true}

// limitBody refuses, with 413, a body larger than its route takes.
func limitBody(c *fiber.Ctx) error {
	n := max(c.Request().Header.ContentLength(), len(c.Request().Body()))
	if n <= routeBody || largeBodies[c.Path()] {
		return c.Next()
	}
	return &httpError{status: fiber.StatusRequestEntityTooLarge, code: "too_large",
		message: fmt.Sprintf("the request body is %d bytes; this address takes at most %d KiB", n, routeBody>>10)}
}

// secureHeaders sets the headers every response should carry.
func secureHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
	c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	return c.Next()
}

// authenticate resolves the session cookie (pages) or the bearer token (API)
// into an identity. It never rejects; guards do.
func (s *Server) authenticate(c *fiber.Ctx) error {
	api := strings.HasPrefix(c.Path(), "/api/")
	var (
		id  *identity
		err error
	)
	if api {
		if h := c.Get(fiber.HeaderAuthorization); h != "" {
			raw, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				return errUnauthenticated("use Authorization: Bearer <token>")
			}
			id, err = s.identityFromBearer(c, strings.TrimSpace(raw))
			if err != nil {
				return err
			}
		}
	} else if raw := s.cookie(c, sessionCookie); raw != "" {
		id, err = s.identityFromSession(c, raw)
		if errors.Is(err, errBadSession) {
			s.clearCookie(c, sessionCookie)
			id = nil
		} else if err != nil {
			return err
		}
	}
	if id != nil {
		c.Locals(localIdentity, id)
		c.Locals(localLogger, s.logger(c).With("user", id.User.ID, "tenant", id.User.Tenant()))
	}
	return c.Next()
}

func (s *Server) identityFromSession(c *fiber.Ctx, raw string) (*identity, error) {
	claims, err := s.parseSession(raw)
	if err != nil {
		return nil, err
	}
	// The session row and its user in one read: an ended session, another
	// user's or a deleted user is refused at once.
	u, err := s.store.SessionUser(c.UserContext(), claims.ID, claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadSession
	} else if err != nil {
		return nil, err // an unreachable database must not sign the browser out
	}
	if subtle.ConstantTimeCompare([]byte(claims.PasswordStamp), []byte(s.passwordStamp(u.PasswordHash))) != 1 {
		return nil, errBadSession
	}
	id, err := s.loadIdentity(c, u, store.ScopeWrite)
	if err != nil {
		return nil, err
	}
	id.SessionID = claims.ID
	return id, nil
}

func (s *Server) identityFromBearer(c *fiber.Ctx, raw string) (*identity, error) {
	if strings.HasPrefix(raw, "fbx_") {
		tok, u, err := s.store.AuthenticateToken(c.UserContext(), raw)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, errUnauthenticated("the API token is not valid or was revoked")
			}
			return nil, err
		}
		return s.loadIdentity(c, u, tok.Scope)
	}
	id, err := s.identityFromSession(c, raw)
	if errors.Is(err, errBadSession) {
		return nil, errUnauthenticated("the token is not valid, has expired or was signed out; log in again")
	}
	return id, err
}

func (s *Server) loadIdentity(c *fiber.Ctx, u store.User, scope string) (*identity, error) {
	id := &identity{User: u, Scope: scope}
	if u.IsStaff() && !u.TwoFactor() {
		required, err := s.store.StaffTwoFactorRequired(c.UserContext())
		if err != nil {
			return nil, err
		}
		id.TwoFactorMissing = required
	}
	if !u.IsStaff() {
		t, err := s.store.GetTenant(c.UserContext(), u.Tenant())
		if err != nil {
			return nil, err
		}
		id.Tenant = &t
	}
	return id, nil
}

// csrf protects every form. A browser without a session carries a random
// value in a cookie; the form token is an HMAC of the session id once signed
// in (of that value before), so a token planted or read by another site
// never matches a session. State-changing requests must also come from this
// origin by Sec-Fetch-Site or Origin. The API is exempt because it
// authenticates with bearer tokens only, never cookies.
func (s *Server) csrf(c *fiber.Ctx) error {
	if strings.HasPrefix(c.Path(), "/api/") {
		return c.Next()
	}
	anon := s.cookie(c, csrfCookie)
	if len(anon) < 32 {
		anon = randomString(32)
		s.setCookie(c, csrfCookie, anon, time.Time{})
	}
	var sid string
	if id := who(c); id != nil {
		sid = id.SessionID
	}
	token := s.csrfToken(anon, sid)
	c.Locals(localCSRF, token)
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if reason := crossOrigin(c); reason != "" {
		s.logger(c).Warn("refused cross-origin form", "reason", reason, "path", c.Path())
		return &httpError{status: fiber.StatusForbidden, code: "cross_origin", message: "this form was sent from another site; open the portal directly and try again"}
	}
	sent := c.Get("X-CSRF-Token")
	if sent == "" {
		sent = c.FormValue("_csrf")
	}
	if subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
		return &httpError{status: fiber.StatusForbidden, code: "csrf", message: "this form has expired; reload the page and try again"}
	}
	return c.Next()
}

// csrfToken is the form token of a session, or of a browser's pre-session
// value when sessionID is empty.
func (s *Server) csrfToken(anon, sessionID string) string {
	m := hmac.New(sha256.New, s.jwtKey)
	if sessionID != "" {
		m.Write([]byte("csrf/session/" + sessionID))
	} else {
		m.Write([]byte("csrf/anonymous/" + anon))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// crossOrigin explains why a state-changing request did not come from a
// page of this origin, or returns "". Browsers send Sec-Fetch-Site; older
// ones send Origin; a request with neither is not from a browser page of
// another site (a script there cannot leave both out).
func crossOrigin(c *fiber.Ctx) string {
	switch site := c.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return ""
	case "":
	default:
		return "Sec-Fetch-Site: " + site
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		ref := c.Get(fiber.HeaderReferer)
		if ref == "" {
			return ""
		}
		origin = ref
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return "Origin: " + cleanHeader(origin)
	}
	if !strings.EqualFold(u.Host, string(c.Request().Host())) {
		return "Origin: " + cleanHeader(origin)
	}
	return ""
}

func cleanHeader(v string) string {
	if len(v) > 100 {
		v = v[:100]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

// cookieName is the name a cookie is set under: over HTTPS the __Host-
// prefix makes browsers refuse it from any other host or when not Secure.
func (s *Server) cookieName(name string) string {
	if s.cfg.SecureCookies {
		return "__Host-" + name
	}
	return name
}

func (s *Server) cookie(c *fiber.Ctx, name string) string {
	return c.Cookies(s.cookieName(name))
}

func (s *Server) setCookie(c *fiber.Ctx, name, value string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: s.cookieName(name), Value: value, Path: "/", Expires: expires,
		HTTPOnly: true, Secure: s.cfg.SecureCookies, SameSite: fiber.CookieSameSiteLaxMode,
	})
}

func (s *Server) clearCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{
		Name: s.cookieName(name), Value: "", Path: "/", Expires: time.Unix(1, 0), MaxAge: -1,
		HTTPOnly: true, Secure: s.cfg.SecureCookies, SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// flash stores a one-shot message for the next page.
func (s *Server) flash(c *fiber.Ctx, kind, msg string) {
	v := url.Values{"k": {kind}, "m": {msg}}
	s.setCookie(c, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(v.Encode())), time.Now().Add(time.Minute))
}

func (s *Server) takeFlash(c *fiber.Ctx) *views.Flash {
	raw := s.cookie(c, flashCookie)
	if raw == "" {
		return nil
	}
	s.clearCookie(c, flashCookie)
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil
	}
	v, err := url.ParseQuery(string(b))
	if err != nil || v.Get("m") == "" {
		return nil
	}
	kind := v.Get("k")
	if kind != "success" && kind != "error" && kind != "info" {
		kind = "info"
	}
	return &views.Flash{Kind: kind, Message: v.Get("m")}
}

// Guards.

func signedIn(c *fiber.Ctx) error {
	if who(c) == nil {
		return errUnauthenticated("log in first")
	}
	return c.Next()
}

func tenantOnly(c *fiber.Ctx) error {
	id := who(c)
	if id == nil {
		return errUnauthenticated("log in first")
	}
	if id.staff() {
		return errForbidden("this page is for customers; staff use the admin panel")
	}
	return c.Next()
}

// tenantWrite lets owners and members change tenant resources; read-only
// members and read-only tokens are refused.
func tenantWrite(c *fiber.Ctx) error {
	if !who(c).canWriteTenant() {
		return errForbidden("your role or token allows reading only")
	}
	return c.Next()
}

func ownerOnly(c *fiber.Ctx) error {
	id := who(c)
	if id.User.Role != store.RoleOwner || id.Scope != store.ScopeWrite {
		return errForbidden("only owners of the organisation can do this")
	}
	return c.Next()
}

func staffOnly(c *fiber.Ctx) error {
	id := who(c)
	if id == nil {
		return errUnauthenticated("log in first")
	}
	if !id.staff() {
		return errNotFound("page")
	}
	if id.TwoFactorMissing {
		if !strings.HasPrefix(c.Path(), "/api/") {
			// The account page says why and offers the enrolment.
			return c.Redirect("/account", fiber.StatusSeeOther)
		}
		return &httpError{status: fiber.StatusForbidden, code: "two_factor_required",
			message: "staff accounts must sign in with two-factor authentication; set it up with POST /api/v1/auth/two-factor/setup using a session from /api/v1/auth/login"}
	}
	return c.Next()
}

func staffOperate(c *fiber.Ctx) error {
	if !who(c).canOperate() {
		return errForbidden("your staff role allows reading only")
	}
	return c.Next()
}

func staffAdmin(c *fiber.Ctx) error {
	if !who(c).canAdmin() {
		return errForbidden("only admins can change this")
	}
	return c.Next()
}
