package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func (s *Server) apiAdminTenantGet(c *fiber.Ctx) error {
	return s.sendAdminTenant(c, c.Params("id"), fiber.StatusOK)
}

// sendAdminTenant answers with one tenant as staff see it: limits, usage
// and members.
func (s *Server) sendAdminTenant(c *fiber.Ctx, id string, status int) error {
	ctx := c.UserContext()
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	_, used, err := s.store.QuotaUsage(ctx, id)
	if err != nil {
		return err
	}
	members, err := s.store.ListMembers(ctx, id)
	if err != nil {
		return err
	}
	sum := store.TenantSummary{Tenant: t, VMCount: used.Instances}
	out := adminTenantDetailJSON{Used: used, Members: make([]userJSON, len(members))}
	for i, m := range members {
		out.Members[i] = toUserJSON(m)
		if m.Role == store.RoleOwner && sum.OwnerEmail == "" {
			sum.OwnerEmail = m.Email
		}
	}
	out.adminTenantJSON = toAdminTenantJSON(sum)
	return c.Status(status).JSON(out)
}
