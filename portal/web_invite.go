package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) inviteView(c *fiber.Ctx, token string) (views.AcceptInviteView, error) {
	inv, ten, err := s.store.GetInvitation(c.UserContext(), token)
	if err != nil {
		return views.AcceptInviteView{}, err
	}
	return views.AcceptInviteView{Page: s.page(c, "Join "+ten.Name, "invite"), Token: token, TenantName: ten.Name, Email: inv.Email, Role: inv.Role}, nil
}

func (s *Server) webInviteForm(c *fiber.Ctx) error {
	v, err := s.inviteView(c, c.Params("token"))
	if err != nil {
		return err
	}
	return s.render(c, views.AcceptInvite(v))
}

func (s *Server) webInviteAccept(c *fiber.Ctx) error {
	token := c.Params("token")
	v, err := s.inviteView(c, token)
	if err != nil {
		return err
	}
	pw := c.FormValue("password")
	err = validPassword("password", pw)
	if err == nil && c.FormValue("password_confirm") != pw {
		err = store.E(store.ErrInvalid, "password_confirm", "the passwords do not match")
	}
	var u store.User
	if err == nil {
		var hash string
		if hash, err = s.hashPassword(pw); err == nil {
			u, err = s.store.AcceptInvitation(c.UserContext(), store.Actor{Email: v.Email, IP: c.IP()}, token, hash)
		}
	}
	if err != nil {
		if v.Errors, err = formFailure(c, err, "password", "password_confirm"); err != nil {
			return err
		}
		return s.render(c, views.AcceptInvite(v))
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return s.redirect(c, "/dashboard", "success", "Welcome to "+v.TenantName+".")
}
