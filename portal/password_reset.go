package portal

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

const (
	// resetWindow and the limits below bound password reset requests: per
	// address, refused openly; per account, dropped quietly, so that nobody
	// can flood an inbox and the answer tells nothing about the account.
	resetWindow       = time.Hour
	resetPerIP        = 10
	resetPerAccount   = 3
	resetTriesPerLink = 10
)

// requestPasswordReset starts a reset for email: a link by email when the
// portal sends email, otherwise a request staff see under Users. It answers
// the same whether or not the email has an account.
func (s *Server) requestPasswordReset(c *fiber.Ctx, email string) error {
	norm, err := store.NormalizeEmail(email)
	if err != nil {
		return err
	}
	ipKey := "reset:ip:" + c.IP()
	if blocked, wait := s.limiter.blocked(ipKey, resetPerIP, resetWindow); blocked {
		return &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited", field: "email",
			message: "too many reset requests from your address; try again later", retryAfter: int(wait.Seconds()) + 1}
	}
	s.limiter.fail(ipKey, resetWindow)
	accountKey := "reset:account:" + norm
	if blocked, _ := s.limiter.blocked(accountKey, resetPerAccount, resetWindow); blocked {
		return nil
	}
	s.limiter.fail(accountKey, resetWindow)
	token, u, err := s.store.RequestPasswordReset(c.UserContext(), store.Actor{IP: c.IP()}, norm, s.cfg.Mailer != nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if token != "" {
		s.sendMail(c, mailer.Message{To: u.Email, Subject: "Reset your Fibrix Cloud password",
			Text: "Hello,\n\nsomeone (perhaps you) asked to reset the password of your Fibrix Cloud account. " +
				"To choose a new one, follow this link within an hour:\n\n" + s.resetURL(token) +
				"\n\nThe link works once. If you did not ask, ignore this message: your password stays as it is.\n"})
	}
	return nil
}

// resetRequestAnswer is what anyone asking for a reset is told.
func (s *Server) resetRequestAnswer(email string) string {
	if s.cfg.Mailer != nil {
		return "If " + email + " has an account, we sent a link to it. It works once, within an hour."
	}
	return "If " + email + " has an account, our staff have your request and will send you a link to choose a new password."
}

func (s *Server) resetURL(token string) string {
	return s.cfg.PublicURL + "/password/reset/" + token
}

// resetPassword sets a new password through a reset link. Wrong links are
// counted per address, so that links cannot be guessed at speed.
func (s *Server) resetPassword(c *fiber.Ctx, token, password, confirm string) (store.User, error) {
	key := "reset:link:" + c.IP()
	if blocked, wait := s.limiter.blocked(key, resetTriesPerLink, resetWindow); blocked {
		return store.User{}, &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited",
			message: "too many tries with reset links from your address; try again later", retryAfter: int(wait.Seconds()) + 1}
	}
	u, err := s.store.PasswordResetUser(c.UserContext(), token)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.limiter.fail(key, resetWindow)
		}
		return store.User{}, err
	}
	if err := validPassword("password", password, u.Email, emailLocal(u.Email)); err != nil {
		return store.User{}, err
	}
	if confirm != password {
		return store.User{}, store.E(store.ErrInvalid, "password_confirm", "the passwords do not match")
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	return s.store.ResetPassword(c.UserContext(), store.Actor{IP: c.IP()}, strings.Clone(token), hash)
}
