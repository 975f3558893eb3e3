package portal

import "github.com/gofiber/fiber/v2"

// apiAdminSubnetDelete removes a subnet no VM holds an address in.
func (s *Server) apiAdminSubnetDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteSubnet(c.UserContext(), s.actor(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
