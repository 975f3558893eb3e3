package portal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Sign-in budget: failures per account and per source address.
const (
	loginWindow     = 15 * time.Minute
	loginPerAccount = 5
	loginPerIP      = 20
	signupWindow    = time.Hour
	signupPerIP     = 10
)

// login checks credentials under the rate limits and records the outcome.
func (s *Server) login(c *fiber.Ctx, email, password string) (store.User, error) {
	ctx := c.UserContext()
	email = strings.ToLower(strings.TrimSpace(email))
	acctKey, ipKey := "login:acct:"+email, "login:ip:"+c.IP()
	for _, k := range []struct {
		key string
		max int
	}{{acctKey, loginPerAccount}, {ipKey, loginPerIP}} {
		if blocked, wait := s.limiter.blocked(k.key, k.max, loginWindow); blocked {
			s.auditAuth(ctx, c, email, "auth.login", store.ResultFailure, "rate limited")
			mins := int(math.Ceil(wait.Minutes()))
			return store.User{}, &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited",
				message: fmt.Sprintf("too many failed attempts; try again in %d minute%s", mins, plural(mins)), retryAfter: int(wait.Seconds()) + 1}
		}
	}
	if email == "" || password == "" {
		return store.User{}, store.E(store.ErrInvalid, "email", "enter your email and password")
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if !s.checkPassword(u.PasswordHash, password) {
		s.limiter.fail(acctKey, loginWindow)
		s.limiter.fail(ipKey, loginWindow)
		s.auditAuth(ctx, c, email, "auth.login", store.ResultFailure, "wrong email or password")
		return store.User{}, &httpError{status: fiber.StatusUnauthorized, code: "invalid_credentials", message: "wrong email or password", field: "password"}
	}
	s.limiter.reset(acctKey)
	a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: u.Tenant(), IP: c.IP()}
	if err := s.store.RecordLogin(ctx, a); err != nil {
		return store.User{}, err
	}
	return u, nil
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

// signup creates a tenant and its owner under a per-address budget.
func (s *Server) signup(c *fiber.Ctx, tenant, email, password, confirm string) (store.User, error) {
	key := "signup:ip:" + c.IP()
	if blocked, _ := s.limiter.blocked(key, signupPerIP, signupWindow); blocked {
		return store.User{}, &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited",
			message: "too many sign-ups from your address; try again later", retryAfter: int(signupWindow.Seconds())}
	}
	if err := validPassword("password", password); err != nil {
		return store.User{}, err
	}
	if confirm != password {
		return store.User{}, store.E(store.ErrInvalid, "password_confirm", "the passwords do not match")
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	_, u, err := s.store.SignUp(c.UserContext(), store.Actor{IP: c.IP()}, tenant, email, hash)
	if err != nil {
		return store.User{}, err
	}
	s.limiter.fail(key, signupWindow)
	return u, nil
}

// startSession sets the session cookie for a signed-in user.
func (s *Server) startSession(c *fiber.Ctx, u store.User) error {
	tok, exp, err := s.issueSession(u)
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
