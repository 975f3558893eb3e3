package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminUserList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	users, total, err := s.store.ListUsers(c.UserContext(), c.Query("q"), p)
	if err != nil {
		return err
	}
	items := make([]adminUserJSON, len(users))
	for i, u := range users {
		items[i] = adminUserJSON{userJSON: toUserJSON(u.User), TenantID: u.User.Tenant(), TenantName: u.TenantName}
	}
	return c.JSON(newList(items, p, total))
}
