package portal

import "github.com/gofiber/fiber/v2"

// apiAdminTenantQuota replaces a tenant's limits; every figure must be sent.
func (s *Server) apiAdminTenantQuota(c *fiber.Ctx) error {
	var req quotaInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id := c.Params("id")
	cur, _, err := s.store.QuotaUsage(c.UserContext(), id)
	if err != nil {
		return err
	}
	q, err := req.quota(cur)
	if err != nil {
		return err
	}
	if err := s.store.SetTenantQuota(c.UserContext(), s.actor(c), id, q); err != nil {
		return err
	}
	return s.sendAdminTenant(c, id, fiber.StatusOK)
}
