package portal

import "github.com/gofiber/fiber/v2"

// apiAdminBootSubnetDelete removes a boot subnet with its reservations and
// leases; the DHCP server stops answering on it.
func (s *Server) apiAdminBootSubnetDelete(c *fiber.Ctx) error {
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteBootSubnet(ctx, s.actor(c), sn.ID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
