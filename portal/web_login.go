package portal

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) webHome(c *fiber.Ctx) error {
	id := who(c)
	switch {
	case id == nil:
		return c.Redirect("/login", fiber.StatusSeeOther)
	case id.staff():
		return c.Redirect("/admin/tenants", fiber.StatusSeeOther)
	}
	return c.Redirect("/dashboard", fiber.StatusSeeOther)
}

func (s *Server) webLoginForm(c *fiber.Ctx) error {
	if id := who(c); id != nil {
		return c.Redirect(safeNext(c.Query("next"), id.staff()), fiber.StatusSeeOther)
	}
	return s.render(c, views.Login(views.LoginView{Page: s.page(c, "Log in", "login"), Next: c.Query("next")}))
}

func (s *Server) webLogin(c *fiber.Ctx) error {
	email, next := strings.TrimSpace(c.FormValue("email")), c.FormValue("next")
	u, err := s.login(c, email, c.FormValue("password"))
	if err != nil {
		he := classify(err)
		if he.status >= 500 {
			return err
		}
		c.Status(he.status)
		return s.render(c, views.Login(views.LoginView{Page: s.page(c, "Log in", "login"), Email: email, Next: next,
			Errors: views.FormErrors{"": he.message}}))
	}
	if u.TwoFactor() {
		tok, exp, err := s.signTwoFactor(u, time.Now())
		if err != nil {
			return err
		}
		s.setCookie(c, twoFactorCookie, tok, exp)
		to := "/login/code"
		if next != "" {
			to += "?next=" + url.QueryEscape(next)
		}
		return c.Redirect(to, fiber.StatusSeeOther)
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return c.Redirect(safeNext(next, u.IsStaff()), fiber.StatusSeeOther)
}

func (s *Server) webLogout(c *fiber.Ctx) error {
	if id := who(c); id != nil {
		if err := s.store.EndSession(c.UserContext(), id.User.ID, id.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.auditAuth(c.UserContext(), c, id.User.Email, "auth.logout", "success", "")
	}
	s.clearCookie(c, sessionCookie)
	return s.redirect(c, "/login", "success", "You are logged out.")
}
