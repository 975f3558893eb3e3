package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// webAdminTenantSuspend blocks a tenant from changing anything; the reason
// is shown to its members.
func (s *Server) webAdminTenantSuspend(c *fiber.Ctx) error {
	id, reason := c.Params("id"), c.FormValue("reason")
	t, err := s.store.GetTenant(c.UserContext(), id)
	if err != nil {
		return err
	}
	if err := s.store.SuspendTenant(c.UserContext(), s.actor(c), t.ID, reason); err != nil {
		return s.adminTenantRefused(c, t.ID, err, reason)
	}
	return s.redirect(c, adminTenantPath(t.ID), "success", t.Name+" is suspended.")
}

// webAdminTenantUnsuspend lifts a suspension.
func (s *Server) webAdminTenantUnsuspend(c *fiber.Ctx) error {
	t, err := s.store.GetTenant(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	if err := s.store.UnsuspendTenant(c.UserContext(), s.actor(c), t.ID); err != nil {
		return s.adminTenantRefused(c, t.ID, err, "")
	}
	return s.redirect(c, adminTenantPath(t.ID), "success", t.Name+" is active again.")
}

// adminTenantRefused shows the tenant page again with why a suspend or
// unsuspend was refused.
func (s *Server) adminTenantRefused(c *fiber.Ctx, id string, cause error, reason string) error {
	errs, err := formFailure(c, cause, "reason")
	if err != nil {
		return err
	}
	v, err := s.adminTenantView(c, id)
	if err != nil {
		return err
	}
	v.Errors, v.Reason = errs, reason
	return s.render(c, views.AdminTenant(v))
}
