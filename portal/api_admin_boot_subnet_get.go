package portal

import "github.com/gofiber/fiber/v2"

// apiAdminBootSubnetGet returns one boot subnet by id or name with its
// reservations.
func (s *Server) apiAdminBootSubnetGet(c *fiber.Ctx) error {
	b, err := s.bootSubnetOf(c)
	if err != nil {
		return err
	}
	return c.JSON(toBootSubnetDetailJSON(b))
}
