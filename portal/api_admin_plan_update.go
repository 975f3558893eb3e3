package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminPlanUpdate(c *fiber.Ctx) error {
	var req planRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input(true)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	p, err := s.store.UpdatePlan(ctx, s.actor(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	usage, err := s.store.PlanUsage(ctx)
	if err != nil {
		return err
	}
	return c.JSON(toAdminPlanJSON(p, usage[p.ID]))
}
