package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) webMemberDelete(c *fiber.Ctx) error {
	m, err := s.member(c, c.Params("id"))
	if err != nil {
		return err
	}
	id := who(c)
	if err := s.store.RemoveMember(c.UserContext(), s.actor(c), id.User.Tenant(), m.ID); err != nil {
		return s.refuse(c, "/account", "Could not remove "+m.Email, err)
	}
	if m.ID == id.User.ID {
		// An owner left the organisation: the account is gone, and so is the session.
		s.clearCookie(c, sessionCookie)
		return s.redirect(c, "/login", "success", "You have left "+id.Tenant.Name+"; your account is deleted.")
	}
	return s.redirect(c, "/account", "success", m.Email+" was removed from "+id.Tenant.Name+".")
}
