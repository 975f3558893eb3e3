package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminMachineCreate enlists a machine by hand; the BMC password is
// sealed here, before it reaches the store.
func (s *Server) apiAdminMachineCreate(c *fiber.Ctx) error {
	var req machineRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	typ, params, password, err := machinePower(req.Power)
	if err != nil {
		return err
	}
	sealed, err := s.seal(password)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	m, err := s.store.EnlistMachine(ctx, s.actor(c), store.MachineInput{Name: req.Name, MACs: req.MACs, PowerType: typ,
		PowerParams: params, PowerSecretSealed: sealed})
	if err != nil {
		return err
	}
	d, err := s.store.GetMachine(ctx, m.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toMachineDetailJSON(d))
}
