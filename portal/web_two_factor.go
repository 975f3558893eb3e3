package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/portal/otp"
	"github.com/fibrixcloud/fibrix/views"
)

// webLoginCodeForm asks for the second factor of a sign-in that has passed
// the password.
func (s *Server) webLoginCodeForm(c *fiber.Ctx) error {
	if _, err := s.twoFactorUser(c, c.Cookies(s.cookieName(twoFactorCookie))); err != nil {
		s.clearCookie(c, twoFactorCookie)
		return s.redirect(c, "/login", "error", "Your sign-in has expired. Enter your email and password again.")
	}
	return s.render(c, views.LoginCode(views.LoginCodeView{Page: s.page(c, "Two-factor sign-in", "login"), Next: c.Query("next")}))
}

// webLoginCode finishes a sign-in with the authenticator or a recovery code.
func (s *Server) webLoginCode(c *fiber.Ctx) error {
	next := c.FormValue("next")
	u, err := s.twoFactorUser(c, c.Cookies(s.cookieName(twoFactorCookie)))
	if err != nil {
		s.clearCookie(c, twoFactorCookie)
		return s.redirect(c, "/login", "error", "Your sign-in has expired. Enter your email and password again.")
	}
	if err := s.secondFactor(c, u, c.FormValue("code")); err != nil {
		he := classify(err)
		if he.status >= 500 {
			return err
		}
		if he.retryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, itoa(he.retryAfter))
		}
		c.Status(he.status)
		errs := views.FormErrors{"code": he.message}
		if he.field != "code" {
			errs = views.FormErrors{"": he.message}
		}
		return s.render(c, views.LoginCode(views.LoginCodeView{Page: s.page(c, "Two-factor sign-in", "login"), Next: next, Errors: errs}))
	}
	s.clearCookie(c, twoFactorCookie)
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return c.Redirect(safeNext(next, u.IsStaff()), fiber.StatusSeeOther)
}

// webTwoFactorSetup starts enrolment: a new secret waits and the page shows
// its QR code.
func (s *Server) webTwoFactorSetup(c *fiber.Ctx) error {
	secret, uri, err := s.beginTwoFactor(c, who(c).User)
	if err != nil {
		return s.refuse(c, "/account", "Could not set up two-factor sign-in", err)
	}
	return s.renderTwoFactorSetup(c, secret, uri, nil)
}

func (s *Server) renderTwoFactorSetup(c *fiber.Ctx, secret, uri string, errs views.FormErrors) error {
	qr, err := qrModules(uri)
	if err != nil {
		return err
	}
	return s.render(c, views.TwoFactorSetup(views.TwoFactorSetupView{Page: s.page(c, "Two-factor sign-in", "account"),
		Secret: secret, QR: qr, Errors: errs}))
}

// webTwoFactorEnable confirms the app's first code and shows the recovery
// codes once.
func (s *Server) webTwoFactorEnable(c *fiber.Ctx) error {
	codes, err := s.enableTwoFactor(c, c.FormValue("code"))
	if err != nil {
		errs, err := formFailure(c, err, "code")
		if err != nil {
			return err
		}
		u, gerr := s.store.GetUser(c.UserContext(), who(c).User.ID)
		if gerr != nil {
			return gerr
		}
		if u.TwoFactor() || u.TOTPSecret == "" {
			return s.redirect(c, "/account", "error", "Could not turn on two-factor sign-in: "+errs[""]+".")
		}
		secret, oerr := s.totp.Open(u.TOTPSecret)
		if oerr != nil {
			return oerr
		}
		return s.renderTwoFactorSetup(c, secret, otp.URL(totpIssuer, u.Email, secret), errs)
	}
	return s.render(c, views.TwoFactorSetup(views.TwoFactorSetupView{Page: s.page(c, "Two-factor sign-in", "account"), RecoveryCodes: codes}))
}

// webRecoveryCodes replaces the recovery codes, for a current code.
func (s *Server) webRecoveryCodes(c *fiber.Ctx) error {
	codes, err := s.renewRecoveryCodes(c, c.FormValue("code"))
	if err != nil {
		errs, err := formFailure(c, err, "code")
		if err != nil {
			return err
		}
		return s.renderAccountWith(c, func(v *views.AccountView) { v.RecoveryErrors = errs })
	}
	return s.render(c, views.TwoFactorSetup(views.TwoFactorSetupView{Page: s.page(c, "Two-factor sign-in", "account"), RecoveryCodes: codes, Renewed: true}))
}

// webTwoFactorDisable turns two-factor sign-in off.
func (s *Server) webTwoFactorDisable(c *fiber.Ctx) error {
	if err := s.disableTwoFactor(c, c.FormValue("password"), c.FormValue("code")); err != nil {
		errs, err := formFailure(c, err, "password", "code")
		if err != nil {
			return err
		}
		return s.renderAccountWith(c, func(v *views.AccountView) { v.TwoFactorErrors = errs })
	}
	return s.redirect(c, "/account", "success", "Two-factor sign-in is off.")
}

// sessionOnly refuses API tokens: two-factor settings change how the user
// signs in, which a token that bypasses signing in must not do.
func sessionOnly(c *fiber.Ctx) error {
	if id := who(c); id == nil || id.SessionID == "" {
		return &httpError{status: fiber.StatusForbidden, code: "forbidden",
			message: "two-factor settings need a signed-in session, not an API token"}
	}
	return c.Next()
}

// codeOf is a code as typed, without the spaces apps show in it.
func codeOf(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), " ", "") }
