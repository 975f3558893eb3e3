package portal

import "github.com/gofiber/fiber/v2"

// apiAdminHostDelete removes a host; one that still holds VMs is refused.
func (s *Server) apiAdminHostDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteHost(c.UserContext(), s.actor(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
