package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiQuota(c *fiber.Ctx) error {
	limits, used, err := s.store.QuotaUsage(c.UserContext(), who(c).User.Tenant())
	if err != nil {
		return err
	}
	return c.JSON(quotaResponse{Limits: limits, Used: used})
}
