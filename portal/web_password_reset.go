package portal

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) webForgotPasswordForm(c *fiber.Ctx) error {
	return s.render(c, views.ForgotPassword(views.ForgotPasswordView{Page: s.page(c, "Reset your password", "login")}))
}

func (s *Server) webForgotPassword(c *fiber.Ctx) error {
	email := strings.TrimSpace(c.FormValue("email"))
	v := views.ForgotPasswordView{Page: s.page(c, "Reset your password", "login"), Email: email}
	if err := s.requestPasswordReset(c, email); err != nil {
		if v.Errors, err = formFailure(c, err, "email"); err != nil {
			return err
		}
		return s.render(c, views.ForgotPassword(v))
	}
	v.Sent = s.resetRequestAnswer(email)
	return s.render(c, views.ForgotPassword(v))
}

func (s *Server) webResetPasswordForm(c *fiber.Ctx) error {
	token := strings.Clone(c.Params("token"))
	v := views.ResetPasswordView{Page: s.page(c, "Choose a new password", "login"), Token: token}
	u, err := s.store.PasswordResetUser(c.UserContext(), token)
	if err != nil {
		if v.Errors, err = resetLinkFailure(c, err); err != nil {
			return err
		}
		return s.render(c, views.ResetPassword(v))
	}
	v.Email = u.Email
	return s.render(c, views.ResetPassword(v))
}

// resetLinkFailure shows a link that does not work on the reset page, with
// the way to ask for a new one, instead of the error page.
func resetLinkFailure(c *fiber.Ctx, err error) (views.FormErrors, error) {
	if errors.Is(err, store.ErrNotFound) {
		c.Status(fiber.StatusNotFound)
		return views.FormErrors{"": classify(err).message}, nil
	}
	return formFailure(c, err, "password", "password_confirm")
}

func (s *Server) webResetPassword(c *fiber.Ctx) error {
	token := strings.Clone(c.Params("token"))
	v := views.ResetPasswordView{Page: s.page(c, "Choose a new password", "login"), Token: token}
	_, err := s.resetPassword(c, token, c.FormValue("password"), c.FormValue("password_confirm"))
	if err == nil {
		return s.redirect(c, "/login", "success", "Your password is changed and you were signed out everywhere. Sign in with the new one.")
	}
	if v.Errors, err = resetLinkFailure(c, err); err != nil {
		return err
	}
	// The form stays while the link works; otherwise the page says why.
	if u, lerr := s.store.PasswordResetUser(c.UserContext(), token); lerr == nil {
		v.Email = u.Email
	}
	return s.render(c, views.ResetPassword(v))
}
