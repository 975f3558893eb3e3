package portal

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type signupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Tenant   string `json:"tenant"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type sessionResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) apiSignup(c *fiber.Ctx) error {
	var req signupRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.signup(c, req.Tenant, req.Email, req.Password, req.Password)
	if err != nil {
		return err
	}
	tok, exp, err := s.issueSession(u)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(sessionResponse{Token: tok, ExpiresAt: exp})
}

func (s *Server) apiLogin(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.login(c, req.Email, req.Password)
	if err != nil {
		return err
	}
	tok, exp, err := s.issueSession(u)
	if err != nil {
		return err
	}
	return c.JSON(sessionResponse{Token: tok, ExpiresAt: exp})
}

type accountResponse struct {
	User   userJSON    `json:"user"`
	Tenant *tenantJSON `json:"tenant"`
	Scope  string      `json:"scope"`
}

type userJSON struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	Staff       bool       `json:"staff"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

type tenantJSON struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Slug          string    `json:"slug"`
	Status        string    `json:"status"`
	SuspendReason string    `json:"suspend_reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

func toUserJSON(u store.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Role: u.Role, Staff: u.IsStaff(), CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

func toTenantJSON(t store.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, Slug: t.Slug, Status: t.Status, SuspendReason: t.SuspendReason, CreatedAt: t.CreatedAt}
}

func (s *Server) apiAccount(c *fiber.Ctx) error {
	id := who(c)
	res := accountResponse{User: toUserJSON(id.User), Scope: id.Scope}
	if id.Tenant != nil {
		t := toTenantJSON(*id.Tenant)
		res.Tenant = &t
	}
	return c.JSON(res)
}
