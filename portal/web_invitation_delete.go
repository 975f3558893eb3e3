package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) webInvitationDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteInvitation(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id")); err != nil {
		return s.refuse(c, "/account", "Could not revoke the invitation", err)
	}
	return s.redirect(c, "/account", "success", "Invitation revoked; its link no longer works.")
}
