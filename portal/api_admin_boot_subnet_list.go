package portal

import "github.com/gofiber/fiber/v2"

// apiAdminBootSubnetList lists the boot subnets, oldest first, with how much
// of each dynamic range is leased.
func (s *Server) apiAdminBootSubnetList(c *fiber.Ctx) error {
	subnets, err := s.bootSubnetStates(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]bootSubnetJSON, len(subnets))
	for i, b := range subnets {
		items[i] = toBootSubnetJSON(b)
	}
	return c.JSON(newItems(items))
}
