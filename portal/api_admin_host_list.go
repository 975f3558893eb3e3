package portal

import "github.com/gofiber/fiber/v2"

// apiAdminHostList lists every host with its capacity figures.
func (s *Server) apiAdminHostList(c *fiber.Ctx) error {
	hosts, err := s.store.ListHosts(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]hostJSON, len(hosts))
	for i, h := range hosts {
		items[i] = toHostJSON(h)
	}
	return c.JSON(newItems(items))
}
