package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
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
	u, sent, err := s.signup(c, tenant, email, c.FormValue("password"), c.FormValue("password_confirm"))
	if err == nil && sent {
		return s.render(c, views.SignupSent(views.SignupSentView{Page: s.page(c, "Check your email", "signup"), Email: email}))
	}
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

func (s *Server) signupConfirmView(c *fiber.Ctx) (views.SignupConfirmView, error) {
	token := c.Params("token")
	req, err := s.store.PendingSignUp(c.UserContext(), token)
	if err != nil {
		return views.SignupConfirmView{}, err
	}
	return views.SignupConfirmView{Page: s.page(c, "Finish creating your account", "signup"), Token: token, TenantName: req.TenantName, Email: req.Email}, nil
}

// webSignupConfirmForm shows what the link will create; only the form's
// POST creates it, so mail scanners that open links change nothing.
func (s *Server) webSignupConfirmForm(c *fiber.Ctx) error {
	v, err := s.signupConfirmView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.SignupConfirm(v))
}

func (s *Server) webSignupConfirm(c *fiber.Ctx) error {
	v, err := s.signupConfirmView(c)
	if err != nil {
		return err
	}
	_, u, err := s.store.ConfirmSignUp(c.UserContext(), store.Actor{IP: c.IP()}, v.Token)
	if err != nil {
		if v.Errors, err = formFailure(c, err); err != nil {
			return err
		}
		return s.render(c, views.SignupConfirm(v))
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return s.redirect(c, "/dashboard", "success", "Welcome to Fibrix Cloud! Add an SSH key, then create your first VM.")
}
