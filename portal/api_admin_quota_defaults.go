package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminQuotaDefaults(c *fiber.Ctx) error {
	q, err := s.store.DefaultQuota(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(q)
}

// apiAdminQuotaDefaultsUpdate replaces the limits new tenants start with;
// every figure must be sent.
func (s *Server) apiAdminQuotaDefaultsUpdate(c *fiber.Ctx) error {
	var req quotaInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	cur, err := s.store.DefaultQuota(c.UserContext())
	if err != nil {
		return err
	}
	q, err := req.quota(cur)
	if err != nil {
		return err
	}
	if err := s.store.SetDefaultQuota(c.UserContext(), s.actor(c), q); err != nil {
		return err
	}
	return c.JSON(q)
}
