package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiForwardDelete(c *fiber.Ctx) error {
	if err := s.store.DeletePortForward(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
