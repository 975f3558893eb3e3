package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) webSSHKeyDelete(c *fiber.Ctx) error {
	ctx, tenantID := c.UserContext(), who(c).User.Tenant()
	k, err := s.store.GetSSHKey(ctx, tenantID, c.Params("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteSSHKey(ctx, s.actor(c), tenantID, k.ID); err != nil {
		return s.refuse(c, "/ssh-keys", "Could not delete key "+k.Name, err)
	}
	return s.redirect(c, "/ssh-keys", "success", "Key "+k.Name+" deleted. VMs that already have it keep it until they are rebuilt.")
}
