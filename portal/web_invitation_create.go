package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// webInvitationCreate shows the new invitation link on the page it answers
// with: the link is a secret and is shown once, never put in a cookie or a
// redirect.
func (s *Server) webInvitationCreate(c *fiber.Ctx) error {
	email, role := c.FormValue("email"), c.FormValue("role")
	_, token, err := s.store.CreateInvitation(c.UserContext(), s.actor(c), who(c).User.Tenant(), email, role)
	if err != nil {
		errs, err := formFailure(c, err, "email", "role")
		if err != nil {
			return err
		}
		return s.renderAccountWith(c, func(v *views.AccountView) {
			v.InviteErrors, v.InviteEmail, v.InviteRole = errs, email, role
		})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.renderAccountWith(c, func(v *views.AccountView) {
		v.NewInviteLink = s.cfg.PublicURL + "/invite/" + token
	})
}
