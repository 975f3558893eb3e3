package portal

import (
	"fmt"
	"math"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// A stolen session must not become a way to guess the password.
const passwordChangeTries = 5

// webPasswordChange replaces the password. Sessions are bound to the
// password hash, so every other session ends; this one continues with a
// fresh cookie.
func (s *Server) webPasswordChange(c *fiber.Ctx) error {
	u, err := s.changePassword(c)
	if err != nil {
		errs, err := formFailure(c, err, "current_password", "password", "password_confirm")
		if err != nil {
			return err
		}
		return s.renderAccountWith(c, func(v *views.AccountView) { v.PasswordErrors = errs })
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return s.redirect(c, "/account", "success", "Your password is changed. You were logged out everywhere else.")
}

func (s *Server) changePassword(c *fiber.Ctx) (store.User, error) {
	u := who(c).User
	key := "password:user:" + u.ID
	if blocked, wait := s.limiter.blocked(key, passwordChangeTries, loginWindow); blocked {
		mins := int(math.Ceil(wait.Minutes()))
		return store.User{}, &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited", field: "current_password",
			message: fmt.Sprintf("too many wrong passwords; try again in %d minute%s", mins, plural(mins)), retryAfter: int(wait.Seconds()) + 1}
	}
	if !s.checkPassword(u.PasswordHash, c.FormValue("current_password")) {
		s.limiter.fail(key, loginWindow)
		t := &store.Target{Type: "user", ID: u.ID, Name: u.Email}
		if err := s.store.RecordAudit(c.UserContext(), s.actor(c), "user.password", t, store.ResultFailure, "wrong current password"); err != nil {
			s.logger(c).Error("record audit entry", "action", "user.password", "err", err)
		}
		return store.User{}, store.E(store.ErrInvalid, "current_password", "this is not your current password")
	}
	s.limiter.reset(key)
	pw := c.FormValue("password")
	if err := validPassword("password", pw, u.Email, emailLocal(u.Email)); err != nil {
		return store.User{}, err
	}
	if c.FormValue("password_confirm") != pw {
		return store.User{}, store.E(store.ErrInvalid, "password_confirm", "the passwords do not match")
	}
	hash, err := s.hashPassword(pw)
	if err != nil {
		return store.User{}, err
	}
	if err := s.store.ChangePassword(c.UserContext(), s.actor(c), u.ID, hash); err != nil {
		return store.User{}, err
	}
	u.PasswordHash = hash
	return u, nil
}
