package portal

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminTenantVMs bounds the VMs listed on a tenant's page; the full list is
// on /admin/vms.
const adminTenantVMs = 50

// adminTenantView loads everything the tenant page shows.
func (s *Server) adminTenantView(c *fiber.Ctx, id string) (views.AdminTenantView, error) {
	ctx := c.UserContext()
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return views.AdminTenantView{}, err
	}
	limits, used, err := s.store.QuotaUsage(ctx, id)
	if err != nil {
		return views.AdminTenantView{}, err
	}
	members, err := s.store.ListMembers(ctx, id)
	if err != nil {
		return views.AdminTenantView{}, err
	}
	vms, _, err := s.store.ListAllVMs(ctx, store.VMFilter{TenantID: id}, store.Page{Number: 1, PerPage: adminTenantVMs})
	if err != nil {
		return views.AdminTenantView{}, err
	}
	v := views.AdminTenantView{
		Page: s.page(c, t.Name, "admin-tenants"), ID: t.ID, Name: t.Name, Status: t.Status,
		SuspendReason: t.SuspendReason, CreatedAt: t.CreatedAt, Quota: adminQuotaFields(limits, used),
		Members: make([]views.AdminTenantMemberRow, len(members)), VMs: make([]views.AdminTenantVMRow, len(vms)),
	}
	for i, m := range members {
		v.Members[i] = views.AdminTenantMemberRow{Email: m.Email, Role: m.Role, CreatedAt: m.CreatedAt}
	}
	for i, vm := range vms {
		v.VMs[i] = views.AdminTenantVMRow{ID: vm.ID, Name: vm.Name, State: vm.State, Plan: vm.PlanName, CreatedAt: vm.CreatedAt}
	}
	return v, nil
}

// webAdminTenant shows one tenant with its quota, members and VMs.
func (s *Server) webAdminTenant(c *fiber.Ctx) error {
	v, err := s.adminTenantView(c, c.Params("id"))
	if err != nil {
		return err
	}
	return s.render(c, views.AdminTenant(v))
}

// webAdminTenantQuota sets a tenant's limits. Nothing changes unless all six
// fields are valid.
func (s *Server) webAdminTenantQuota(c *fiber.Ctx) error {
	v, err := s.adminTenantView(c, c.Params("id"))
	if err != nil {
		return err
	}
	q, errs := adminQuotaForm(c, v.Quota)
	if errs == nil {
		err = s.store.SetTenantQuota(c.UserContext(), s.actor(c), v.ID, q)
		if err == nil {
			return s.redirect(c, adminTenantPath(v.ID), "success", "Quota of "+v.Name+" saved.")
		}
		if errs, err = formFailure(c, err, adminQuotaNames()...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v.Errors = errs
	return s.render(c, views.AdminTenant(v))
}

func adminTenantPath(id string) string { return "/admin/tenants/" + url.PathEscape(id) }
