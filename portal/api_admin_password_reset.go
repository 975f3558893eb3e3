package portal

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

type resetLinkJSON struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

type resetRequestJSON struct {
	UserID     string    `json:"user_id"`
	Email      string    `json:"email"`
	TenantName string    `json:"tenant_name"`
	SourceIP   string    `json:"source_ip"`
	CreatedAt  time.Time `json:"created_at"`
}

// apiAdminPasswordReset makes a one-time password reset link for a user;
// the answer is the only place the link appears.
func (s *Server) apiAdminPasswordReset(c *fiber.Ctx) error {
	l, err := s.store.CreatePasswordResetLink(c.UserContext(), s.actor(c), strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(resetLinkJSON{UserID: l.UserID, Email: l.Email, URL: s.resetURL(l.Token), ExpiresAt: l.ExpiresAt})
}

// apiAdminPasswordResetRequests lists the reset requests waiting for staff.
func (s *Server) apiAdminPasswordResetRequests(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	reqs, total, err := s.store.PasswordResetRequests(c.UserContext(), p)
	if err != nil {
		return err
	}
	items := make([]resetRequestJSON, len(reqs))
	for i, r := range reqs {
		items[i] = resetRequestJSON{UserID: r.UserID, Email: r.Email, TenantName: r.TenantName, SourceIP: r.SourceIP, CreatedAt: r.CreatedAt}
	}
	return c.JSON(newList(items, p, total))
}
