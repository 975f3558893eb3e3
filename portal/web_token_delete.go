package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) webTokenDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteAPIToken(c.UserContext(), s.actor(c), who(c).User.ID, c.Params("id")); err != nil {
		return s.refuse(c, "/account/tokens", "Could not revoke the token", err)
	}
	return s.redirect(c, "/account/tokens", "success", "Token revoked; it no longer works.")
}
