package portal

import "github.com/gofiber/fiber/v2"

// apiAdminTenantUnsuspend takes no body.
func (s *Server) apiAdminTenantUnsuspend(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := s.store.UnsuspendTenant(c.UserContext(), s.actor(c), id); err != nil {
		return err
	}
	return s.sendAdminTenant(c, id, fiber.StatusOK)
}
