package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type vmActionRequest struct {
	Type string `json:"type"`
	// Plan is the plan a resize changes to (id or name).
	Plan string `json:"plan"`
	// Image is the image a rebuild installs (id or name); empty keeps the
	// VM's own.
	Image string `json:"image"`
}

// apiVMAction queues start, stop, reboot, rebuild, resize or delete.
func (s *Server) apiVMAction(c *fiber.Ctx) error {
	var req vmActionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	op, err := s.requestVMAction(c, c.Params("id"), req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(toOperationJSON(op))
}

// requestVMAction queues an action for the API and the VM page alike: a
// plan only with a resize, an image only with a rebuild.
func (s *Server) requestVMAction(c *fiber.Ctx, vmID string, req vmActionRequest) (store.Operation, error) {
	ctx, a, tenant := c.UserContext(), s.actor(c), who(c).User.Tenant()
	switch {
	case req.Plan != "" && req.Type != store.OpResize:
		return store.Operation{}, store.E(store.ErrInvalid, "plan", "a plan is given only to resize")
	case req.Image != "" && req.Type != store.OpRebuild:
		return store.Operation{}, store.E(store.ErrInvalid, "image", "an image is given only to rebuild")
	case req.Type == store.OpResize:
		return s.store.ResizeVM(ctx, a, tenant, vmID, req.Plan)
	case req.Type == store.OpRebuild:
		return s.store.RebuildVM(ctx, a, tenant, vmID, req.Image)
	}
	return s.store.RequestAction(ctx, a, tenant, vmID, req.Type)
}
