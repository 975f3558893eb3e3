package portal

import "github.com/gofiber/fiber/v2"

type sshKeyCreateRequest struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

func (s *Server) apiSSHKeyCreate(c *fiber.Ctx) error {
	var req sshKeyCreateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	k, err := s.store.AddSSHKey(c.UserContext(), s.actor(c), who(c).User.Tenant(), req.Name, req.PublicKey)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toSSHKeyJSON(k))
}
