package portal

import "github.com/gofiber/fiber/v2"

type vmActionRequest struct {
	Type string `json:"type"`
}

// apiVMAction queues start, stop, reboot, rebuild or delete.
func (s *Server) apiVMAction(c *fiber.Ctx) error {
	var req vmActionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	op, err := s.store.RequestAction(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id"), req.Type)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(toOperationJSON(op))
}
