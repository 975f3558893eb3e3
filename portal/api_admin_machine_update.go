package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminMachineUpdate changes the fields sent and keeps the rest.
func (s *Server) apiAdminMachineUpdate(c *fiber.Ctx) error {
	var req machinePatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	cur, err := s.store.GetMachine(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	in := store.MachineInput{Name: cur.Name, MACs: req.MACs, PowerType: cur.PowerType, PowerParams: cur.Params()}
	if req.Name != nil {
		in.Name = *req.Name
	}
	if req.Power != nil {
		typ, params, password, err := machinePower(req.Power)
		if err != nil {
			return err
		}
		if typ != "" {
			in.PowerType = typ
		}
		in.PowerParams = params
		if in.PowerSecretSealed, err = s.seal(password); err != nil {
			return err
		}
	}
	if _, err := s.store.UpdateMachine(ctx, s.actor(c), cur.ID, in); err != nil {
		return err
	}
	d, err := s.store.GetMachine(ctx, cur.ID)
	if err != nil {
		return err
	}
	return c.JSON(toMachineDetailJSON(d))
}
