package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminVMRetry sends a VM the provisioner gave up on back to work; 202
// because the work itself happens later.
func (s *Server) apiAdminVMRetry(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if err := s.store.RetryVM(ctx, s.actor(c), c.Params("id")); err != nil {
		return err
	}
	d, err := s.store.GetVM(ctx, "", c.Params("id"))
	if err != nil {
		return err
	}
	items, err := s.adminVMItems(c, []store.VMSummary{d.VMSummary})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(items[0])
}
