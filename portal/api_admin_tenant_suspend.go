package portal

import "github.com/gofiber/fiber/v2"

type suspendRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) apiAdminTenantSuspend(c *fiber.Ctx) error {
	var req suspendRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id := c.Params("id")
	if err := s.store.SuspendTenant(c.UserContext(), s.actor(c), id, req.Reason); err != nil {
		return err
	}
	return s.sendAdminTenant(c, id, fiber.StatusOK)
}
