package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// member finds one user of the caller's tenant; another tenant's id is not found.
func (s *Server) member(c *fiber.Ctx, userID string) (store.User, error) {
	members, err := s.store.ListMembers(c.UserContext(), who(c).User.Tenant())
	if err != nil {
		return store.User{}, err
	}
	for _, m := range members {
		if m.ID == userID {
			return m, nil
		}
	}
	return store.User{}, errNotFound("member")
}

func (s *Server) webMemberRole(c *fiber.Ctx) error {
	m, err := s.member(c, c.Params("id"))
	if err != nil {
		return err
	}
	role := c.FormValue("role")
	if err := s.store.SetMemberRole(c.UserContext(), s.actor(c), who(c).User.Tenant(), m.ID, role); err != nil {
		return s.refuse(c, "/account", "Could not change the role of "+m.Email, err)
	}
	return s.redirect(c, "/account", "success", m.Email+" is now "+role+".")
}
