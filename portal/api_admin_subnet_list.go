package portal

import "github.com/gofiber/fiber/v2"

// apiAdminSubnetList lists the subnets in the order addresses are taken.
func (s *Server) apiAdminSubnetList(c *fiber.Ctx) error {
	subnets, err := s.store.ListSubnets(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]subnetJSON, len(subnets))
	for i, sn := range subnets {
		items[i] = toSubnetJSON(sn)
	}
	return c.JSON(newItems(items))
}
