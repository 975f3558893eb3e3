package portal

import (
	"net/url"

	"github.com/gofiber/fiber/v2"
)

// apiAdminMachineEnlistDiscovered turns a discovered MAC (the path id) into
// a machine with manual power.
func (s *Server) apiAdminMachineEnlistDiscovered(c *fiber.Ctx) error {
	var req enlistDiscoveredRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	mac, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return errNotFound("discovered MAC")
	}
	ctx := c.UserContext()
	m, err := s.store.EnlistDiscovered(ctx, s.actor(c), mac, req.Name)
	if err != nil {
		return err
	}
	d, err := s.store.GetMachine(ctx, m.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toMachineDetailJSON(d))
}
