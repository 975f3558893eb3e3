package portal

import "github.com/gofiber/fiber/v2"

// apiAdminBootSubnetReservationList lists a boot subnet's reservations by
// address.
func (s *Server) apiAdminBootSubnetReservationList(c *fiber.Ctx) error {
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	res, err := s.store.ListReservations(ctx, sn.ID)
	if err != nil {
		return err
	}
	items := make([]reservationJSON, len(res))
	for i, r := range res {
		items[i] = toReservationJSON(r)
	}
	return c.JSON(newItems(items))
}
