package portal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Sign-in budget. Failures count per (account, address) pair with a
// delay that doubles after the first few, so that guessing from one place
// slows down at once while the owner, from an address that has not failed,
// always gets in with the right password. An address failing across many
// accounts is stopped as a whole; an account under attack from many
// addresses refuses only the addresses that have failed it.
const (
	loginWindow       = 15 * time.Minute
	loginFreeFailures = 3               // per pair before any delay
	loginFirstDelay   = 5 * time.Second // then 5 s, 10 s, 20 s … up to loginWindow
	loginPerIP        = 20
	loginPerAccount   = 50
	signupWindow      = time.Hour
	signupPerIP       = 10
)

// loginDelay is how long a pair with n recent failures waits after its
// last one.
func loginDelay(n int) time.Duration {
	if n < loginFreeFailures {
		return 0
	}
	d := loginFirstDelay
	for i := loginFreeFailures; i < n && d < loginWindow; i++ {
		d *= 2
	}
	return min(d, loginWindow)
}

// loginWait reports how long the address must wait before trying this
// account again, or 0.
func (s *Server) loginWait(email, ip string) time.Duration {
	now := s.limiter.now()
	pairN, pairLast := s.limiter.recent("login:pair:"+email+"|"+ip, loginWindow)
	var wait time.Duration
	if d := loginDelay(pairN); d > 0 {
		wait = max(wait, pairLast.Add(d).Sub(now))
	}
	if n, last := s.limiter.recent("login:ip:"+ip, loginWindow); n >= loginPerIP {
		wait = max(wait, last.Add(loginWindow).Sub(now))
	}
	if pairN > 0 {
		if n, last := s.limiter.recent("login:acct:"+email, loginWindow); n >= loginPerAccount {
			wait = max(wait, last.Add(loginWindow).Sub(now))
		}
	}
	return wait
}

// login checks credentials under the rate limits and records the outcome.
func (s *Server) login(c *fiber.Ctx, email, password string) (store.User, error) {
	ctx := c.UserContext()
	email = strings.ToLower(strings.TrimSpace(email))
	ip := c.IP()
	if wait := s.loginWait(email, ip); wait > 0 {
		s.auditAuth(ctx, c, email, "auth.login", store.ResultFailure, "rate limited")
		return store.User{}, tooManyLogins(wait)
	}
	if email == "" || password == "" {
		return store.User{}, store.E(store.ErrInvalid, "email", "enter your email and password")
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if !s.checkPassword(u.PasswordHash, password) {
		s.limiter.fail("login:pair:"+email+"|"+ip, loginWindow)
		s.limiter.fail("login:ip:"+ip, loginWindow)
		s.limiter.fail("login:acct:"+email, loginWindow)
		s.auditAuth(ctx, c, email, "auth.login", store.ResultFailure, "wrong email or password")
		return store.User{}, &httpError{status: fiber.StatusUnauthorized, code: "invalid_credentials", message: "wrong email or password", field: "password"}
	}
	s.limiter.reset("login:pair:" + email + "|" + ip)
	if u.TwoFactor() {
		// The sign-in is recorded once the second factor is given.
		return u, nil
	}
	a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: u.Tenant(), IP: ip}
	if err := s.store.RecordLogin(ctx, a); err != nil {
		return store.User{}, err
	}
	return u, nil
}

func tooManyLogins(wait time.Duration) error {
	msg := fmt.Sprintf("too many failed attempts; try again in %d second%s", int(math.Ceil(wait.Seconds())), plural(int(math.Ceil(wait.Seconds()))))
	if wait > 90*time.Second {
		mins := int(math.Ceil(wait.Minutes()))
		msg = fmt.Sprintf("too many failed attempts; try again in %d minute%s", mins, plural(mins))
	}
	return &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited", message: msg, retryAfter: int(math.Ceil(wait.Seconds()))}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (s *Server) auditAuth(ctx context.Context, c *fiber.Ctx, email, action, result, detail string) {
	a := store.Actor{Email: email, IP: c.IP()}
	if err := s.store.RecordAudit(ctx, a, action, &store.Target{Type: "user", Name: email}, result, detail); err != nil {
		s.logger(c).Error("record audit entry", "action", action, "err", err)
	}
}

// signup creates a tenant and its owner under a per-address budget. With a
// mailer it creates nothing: sent is true and the link that finishes the
// sign-up goes to the address (or, when the address has an account, a
// notice does), so the answer never tells whether the address is known.
func (s *Server) signup(c *fiber.Ctx, tenant, email, password, confirm string) (u store.User, sent bool, err error) {
	key := "signup:ip:" + c.IP()
	if blocked, _ := s.limiter.blocked(key, signupPerIP, signupWindow); blocked {
		return store.User{}, false, &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited",
			message: "too many sign-ups from your address; try again later", retryAfter: int(signupWindow.Seconds())}
	}
	if err := validPassword("password", password, email, emailLocal(email), tenant); err != nil {
		return store.User{}, false, err
	}
	if confirm != password {
		return store.User{}, false, store.E(store.ErrInvalid, "password_confirm", "the passwords do not match")
	}
	// Hashed on every path, so that the time taken tells nothing either.
	hash, err := s.hashPassword(password)
	if err != nil {
		return store.User{}, false, err
	}
	if s.cfg.Mailer != nil {
		token, exists, err := s.store.RequestSignUp(c.UserContext(), store.Actor{IP: c.IP()}, tenant, email, hash)
		if err != nil {
			return store.User{}, false, err
		}
		s.limiter.fail(key, signupWindow)
		if exists {
			s.noteSignupForExisting(c, email)
			s.sendMail(c, mailer.Message{To: email, Subject: "Someone tried to sign up with your email at Fibrix Cloud",
				Text: "Hello,\n\nsomeone (perhaps you) tried to create a Fibrix Cloud account with this email, which already has one. " +
					"No account was created.\n\nTo sign in, go to " + s.cfg.PublicURL + "/login\n\nIf this was not you, you need do nothing.\n"})
		} else {
			s.sendMail(c, mailer.Message{To: email, Subject: "Finish creating your Fibrix Cloud account",
				Text: "Hello,\n\nto finish creating the Fibrix Cloud account for " + strings.Join(strings.Fields(tenant), " ") +
					", follow this link within 24 hours:\n\n" + s.cfg.PublicURL + "/signup/confirm/" + token +
					"\n\nIf you did not sign up, ignore this message: nothing is created without the link.\n"})
		}
		return store.User{}, true, nil
	}
	_, u, err = s.store.SignUp(c.UserContext(), store.Actor{IP: c.IP()}, tenant, email, hash)
	if e, ok := store.AsError(err); ok && e.Kind == store.ErrConflict && e.Field == "email" {
		s.limiter.fail(key, signupWindow)
		s.noteSignupForExisting(c, email)
		return store.User{}, false, store.E(store.ErrConflict, "email", "we could not create an account with this email; if you already have one, log in instead")
	}
	if err != nil {
		return store.User{}, false, err
	}
	s.limiter.fail(key, signupWindow)
	return u, false, nil
}

// sendMail sends m in the background: the request neither waits for the
// relay nor answers differently when it fails. Failures are logged with
// the relay and the recipient's domain, never the message.
func (s *Server) sendMail(c *fiber.Ctx, m mailer.Message) {
	// Strings read from the request live in buffers the server reuses once
	// the handler returns: the goroutine gets its own copies.
	m = mailer.Message{To: strings.Clone(m.To), Subject: strings.Clone(m.Subject), Text: strings.Clone(m.Text)}
	log := s.logger(c)
	domain := m.To[strings.LastIndexByte(m.To, '@')+1:]
	ctx := context.WithoutCancel(c.UserContext())
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := s.cfg.Mailer.Send(ctx, m); err != nil {
			log.Error("email not sent", "to_domain", domain, "subject", m.Subject, "err", err)
			return
		}
		log.Info("email sent", "to_domain", domain, "subject", m.Subject)
	}()
}

// noteSignupForExisting tells the account's organisation, in its activity
// log, that someone tried to sign up again with its email.
func (s *Server) noteSignupForExisting(c *fiber.Ctx, email string) {
	ctx := c.UserContext()
	u, err := s.store.GetUserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return
	}
	t := &store.Target{Type: "user", ID: u.ID, Name: u.Email, TenantID: u.Tenant()}
	if err := s.store.RecordAudit(ctx, store.Actor{IP: c.IP()}, "auth.signup_existing", t, store.ResultFailure,
		"someone tried to create an account with this email"); err != nil {
		s.logger(c).Error("record audit entry", "action", "auth.signup_existing", "err", err)
	}
}

// startSession sets the session cookie for a signed-in user.
func (s *Server) startSession(c *fiber.Ctx, u store.User) error {
	tok, exp, err := s.openSession(c, u, store.SessionWeb)
	if err != nil {
		return err
	}
	s.setCookie(c, sessionCookie, tok, exp)
	return nil
}

// safeNext keeps post-login redirects on this site.
func safeNext(next string, staff bool) string {
	if strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.HasPrefix(next, "/\\") && !strings.HasPrefix(next, "/login") {
		return next
	}
	if staff {
		return "/admin/tenants"
	}
	return "/dashboard"
}

// openSession opens a session for the request's client.
func (s *Server) openSession(c *fiber.Ctx, u store.User, kind string) (string, time.Time, error) {
	return s.issueSession(c.UserContext(), u, kind, c.IP(), c.Get(fiber.HeaderUserAgent))
}
