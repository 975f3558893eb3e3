package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// webAdminTenantList searches tenants by name, slug or member email.
func (s *Server) webAdminTenantList(c *fiber.Ctx) error {
	q, p := c.Query("q"), pageOf(c)
	ts, total, err := s.store.ListTenants(c.UserContext(), q, p)
	if err != nil {
		return err
	}
	v := views.AdminTenantsView{Page: s.page(c, "Tenants", "admin-tenants"), Query: q, Pager: pager(c, p, total, "q")}
	v.Tenants = make([]views.AdminTenantRow, len(ts))
	for i, t := range ts {
		v.Tenants[i] = views.AdminTenantRow{ID: t.ID, Name: t.Name, OwnerEmail: t.OwnerEmail, Status: t.Status,
			VMCount: int(t.VMCount), CreatedAt: t.CreatedAt}
	}
	return s.render(c, views.AdminTenants(v))
}
