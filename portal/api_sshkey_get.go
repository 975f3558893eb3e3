package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiSSHKeyGet(c *fiber.Ctx) error {
	k, err := s.store.GetSSHKey(c.UserContext(), who(c).User.Tenant(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(toSSHKeyJSON(k))
}
