package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminTenantList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	tenants, total, err := s.store.ListTenants(c.UserContext(), c.Query("q"), p)
	if err != nil {
		return err
	}
	items := make([]adminTenantJSON, len(tenants))
	for i, t := range tenants {
		items[i] = toAdminTenantJSON(t)
	}
	return c.JSON(newList(items, p, total))
}
