package portal

import "github.com/gofiber/fiber/v2"

// apiAdminMachineDelete forgets a machine; a deploying or deployed one is
// refused until released.
func (s *Server) apiAdminMachineDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteMachine(c.UserContext(), s.actor(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
