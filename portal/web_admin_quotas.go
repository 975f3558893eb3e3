package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) adminQuotasView(c *fiber.Ctx) (views.AdminQuotasView, error) {
	q, err := s.store.DefaultQuota(c.UserContext())
	if err != nil {
		return views.AdminQuotasView{}, err
	}
	return views.AdminQuotasView{Page: s.page(c, "Default quota", "admin-quotas"), Fields: adminQuotaFields(q, store.Quota{})}, nil
}

// webAdminQuotas shows the quota new tenants start with.
func (s *Server) webAdminQuotas(c *fiber.Ctx) error {
	v, err := s.adminQuotasView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminQuotas(v))
}

// webAdminQuotasUpdate changes the default quota; existing tenants keep theirs.
func (s *Server) webAdminQuotasUpdate(c *fiber.Ctx) error {
	v, err := s.adminQuotasView(c)
	if err != nil {
		return err
	}
	q, errs := adminQuotaForm(c, v.Fields)
	if errs == nil {
		err = s.store.SetDefaultQuota(c.UserContext(), s.actor(c), q)
		if err == nil {
			return s.redirect(c, "/admin/quotas", "success", "Default quota saved; it applies to tenants created from now on.")
		}
		if errs, err = formFailure(c, err, adminQuotaNames()...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v.Errors = errs
	return s.render(c, views.AdminQuotas(v))
}
