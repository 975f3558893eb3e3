package portal

import "github.com/gofiber/fiber/v2"

// apiAdminBootSubnetReservationDelete removes a MAC's reservation from the
// boot subnet in the path; its lease stays until it runs out.
func (s *Server) apiAdminBootSubnetReservationDelete(c *fiber.Ctx) error {
	_, r, err := s.subnetReservation(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteReservation(c.UserContext(), s.actor(c), r.MAC); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
