package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiVMDelete queues the deletion; the provisioner removes the VM later.
func (s *Server) apiVMDelete(c *fiber.Ctx) error {
	op, err := s.store.RequestAction(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id"), store.OpDelete)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(toOperationJSON(op))
}
