package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminPlanList(c *fiber.Ctx) error {
	ctx := c.UserContext()
	plans, err := s.store.ListPlans(ctx, false)
	if err != nil {
		return err
	}
	usage, err := s.store.PlanUsage(ctx)
	if err != nil {
		return err
	}
	items := make([]adminPlanJSON, len(plans))
	for i, p := range plans {
		items[i] = toAdminPlanJSON(p, usage[p.ID])
	}
	return c.JSON(newItems(items))
}
