package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) webSignupForm(c *fiber.Ctx) error {
	if who(c) != nil {
		return c.Redirect("/", fiber.StatusSeeOther)
	}
	return s.render(c, views.Signup(views.SignupView{Page: s.page(c, "Create your account", "signup")}))
}

func (s *Server) webSignup(c *fiber.Ctx) error {
	tenant, email := strings.TrimSpace(c.FormValue("tenant")), strings.TrimSpace(c.FormValue("email"))
	u, err := s.signup(c, tenant, email, c.FormValue("password"), c.FormValue("password_confirm"))
	if err != nil {
		errs, err := formFailure(c, err, "tenant", "email", "password", "password_confirm")
		if err != nil {
			return err
		}
		return s.render(c, views.Signup(views.SignupView{Page: s.page(c, "Create your account", "signup"), Email: email, Tenant: tenant, Errors: errs}))
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return s.redirect(c, "/dashboard", "success", "Welcome to Fibrix Cloud! Add an SSH key, then create your first VM.")
}
