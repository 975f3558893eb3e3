package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminMachineAction records a lifecycle transition or queues a power
// command; the provisioner carries either out, hence 202.
func (s *Server) apiAdminMachineAction(c *fiber.Ctx) error {
	var req machineActionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	m, err := s.store.MachineAction(ctx, s.actor(c), c.Params("id"), strings.TrimSpace(req.Type),
		store.MachineActionInput{Reason: req.Reason, ImageID: req.Image, Disk: req.Disk, KVMHost: req.KVMHost, Erase: req.Erase})
	if err != nil {
		return err
	}
	d, err := s.store.GetMachine(ctx, m.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(toMachineDetailJSON(d))
}
