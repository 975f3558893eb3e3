package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminHostGet(c *fiber.Ctx) error {
	h, err := s.store.GetHost(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toHostJSON(h))
}
