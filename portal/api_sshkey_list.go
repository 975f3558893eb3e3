package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiSSHKeyList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	keys, total, err := s.store.ListSSHKeys(c.UserContext(), who(c).User.Tenant(), p)
	if err != nil {
		return err
	}
	items := make([]sshKeyJSON, len(keys))
	for i, k := range keys {
		items[i] = toSSHKeyJSON(k)
	}
	return c.JSON(newList(items, p, total))
}
