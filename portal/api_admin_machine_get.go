package portal

import "github.com/gofiber/fiber/v2"

// apiAdminMachineGet returns one machine by id or name with its inventory
// and latest events.
func (s *Server) apiAdminMachineGet(c *fiber.Ctx) error {
	d, err := s.store.GetMachine(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toMachineDetailJSON(d))
}
