package portal

import "github.com/gofiber/fiber/v2"

// webAdminHome sends staff to the tenant list, the admin panel's start page.
func (s *Server) webAdminHome(c *fiber.Ctx) error {
	return c.Redirect("/admin/tenants", fiber.StatusSeeOther)
}
