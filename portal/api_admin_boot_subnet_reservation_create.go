package portal

import "github.com/gofiber/fiber/v2"

// apiAdminBootSubnetReservationCreate fixes a MAC's address in a boot
// subnet, outside its dynamic range.
func (s *Server) apiAdminBootSubnetReservationCreate(c *fiber.Ctx) error {
	var req reservationRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	r, err := s.store.AddReservation(ctx, s.actor(c), req.MAC, sn.ID, req.IP, req.Hostname)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toReservationJSON(r))
}
