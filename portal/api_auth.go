package portal

import (
	"strings"
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
	// Code is the authenticator or recovery code, for users with
	// two-factor sign-in.
	Code string `json:"code"`
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
	u, sent, err := s.signup(c, req.Tenant, req.Email, req.Password, req.Password)
	if err != nil {
		return err
	}
	if sent {
		return c.Status(fiber.StatusAccepted).JSON(signupSentResponse{Status: "confirmation_sent",
			Message: "we sent a message to " + req.Email + "; follow the link in it within 24 hours to finish creating your account"})
	}
	tok, exp, err := s.openSession(c, u, store.SessionAPI)
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
	if u.TwoFactor() {
		if err := s.secondFactor(c, u, req.Code); err != nil {
			return err
		}
	}
	tok, exp, err := s.openSession(c, u, store.SessionAPI)
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
	TwoFactor   bool       `json:"two_factor"`
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
	return userJSON{ID: u.ID, Email: u.Email, Role: u.Role, Staff: u.IsStaff(), CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt, TwoFactor: u.TwoFactor()}
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

// apiLogout ends the session the request was made with.
func (s *Server) apiLogout(c *fiber.Ctx) error {
	id := who(c)
	if id.SessionID == "" {
		return store.E(store.ErrInvalid, "", "this is an API token, not a session; revoke it under /api/v1/account/tokens")
	}
	if err := s.store.EndSession(c.UserContext(), id.User.ID, id.SessionID); err != nil {
		return err
	}
	s.auditAuth(c.UserContext(), c, id.User.Email, "auth.logout", store.ResultSuccess, "")
	return c.SendStatus(fiber.StatusNoContent)
}

type signOutResponse struct {
	Ended int64 `json:"ended"`
}

// apiSignOutEverywhere ends every session of the user but the current one.
func (s *Server) apiSignOutEverywhere(c *fiber.Ctx) error {
	id := who(c)
	n, err := s.store.EndOtherSessions(c.UserContext(), s.actor(c), id.User.ID, id.SessionID)
	if err != nil {
		return err
	}
	return c.JSON(signOutResponse{Ended: n})
}

type sessionJSON struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

// apiSessionList shows the user's open sessions.
func (s *Server) apiSessionList(c *fiber.Ctx) error {
	id := who(c)
	list, err := s.store.ListSessions(c.UserContext(), id.User.ID)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionJSON{ID: x.ID, Kind: x.Kind, IP: x.IP, UserAgent: x.UserAgent, CreatedAt: x.CreatedAt,
			LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt, Current: x.ID == id.SessionID})
	}
	return c.JSON(fiber.Map{"sessions": out})
}

// signupSentResponse answers a sign-up that waits for its email to be
// confirmed; it reads the same whether the address has an account or not.
type signupSentResponse struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type signupConfirmRequest struct {
	Token string `json:"token"`
}

// apiSignupConfirm finishes a sign-up with the token from the emailed link
// and opens an API session for the new owner.
func (s *Server) apiSignupConfirm(c *fiber.Ctx) error {
	var req signupConfirmRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Token) == "" {
		return store.E(store.ErrInvalid, "token", "give the token from the link in the email")
	}
	_, u, err := s.store.ConfirmSignUp(c.UserContext(), store.Actor{IP: c.IP()}, strings.TrimSpace(req.Token))
	if err != nil {
		return err
	}
	tok, exp, err := s.openSession(c, u, store.SessionAPI)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(sessionResponse{Token: tok, ExpiresAt: exp})
}
