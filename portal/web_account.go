package portal

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// staffOrganisation is what the account page names as a staff member's
// organisation, which has no tenant record.
const staffOrganisation = "Fibrix Cloud staff"

// accountView builds /account. Tenant users see their organisation's
// members, owners also the pending invitations; staff belong to no tenant,
// so they see only themselves and the password form.
func (s *Server) accountView(c *fiber.Ctx) (views.AccountView, error) {
	id := who(c)
	me := views.MemberRow{ID: id.User.ID, Email: id.User.Email, Role: id.User.Role, CreatedAt: id.User.CreatedAt, IsMe: true}
	v := views.AccountView{Page: s.page(c, "Account", "account"), Me: me}
	ctx := c.UserContext()
	sessions, err := s.store.ListSessions(ctx, id.User.ID)
	if err != nil {
		return views.AccountView{}, err
	}
	for _, x := range sessions {
		v.Sessions = append(v.Sessions, views.SessionRow{Kind: x.Kind, IP: x.IP, UserAgent: x.UserAgent,
			CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, Current: x.ID == id.SessionID})
	}
	u, err := s.store.GetUser(ctx, id.User.ID)
	if err != nil {
		return views.AccountView{}, err
	}
	if v.TwoFactorOn = u.TwoFactor(); v.TwoFactorOn {
		if v.RecoveryCodesLeft, err = s.store.RecoveryCodesLeft(ctx, u.ID); err != nil {
			return views.AccountView{}, err
		}
	}
	if id.staff() {
		if v.StaffTwoFactor, err = s.store.StaffTwoFactorRequired(ctx); err != nil {
			return views.AccountView{}, err
		}
		v.TenantName, v.Members = staffOrganisation, []views.MemberRow{me}
		return v, nil
	}
	v.TenantName = id.Tenant.Name
	v.IsOwner = id.User.Role == store.RoleOwner && id.Scope == store.ScopeWrite
	members, err := s.store.ListMembers(ctx, id.User.Tenant())
	if err != nil {
		return views.AccountView{}, err
	}
	for _, m := range members {
		v.Members = append(v.Members, views.MemberRow{ID: m.ID, Email: m.Email, Role: m.Role, CreatedAt: m.CreatedAt, IsMe: m.ID == id.User.ID})
	}
	if v.IsOwner {
		invs, err := s.store.ListInvitations(ctx, id.User.Tenant())
		if err != nil {
			return views.AccountView{}, err
		}
		for _, inv := range invs {
			v.Invitations = append(v.Invitations, views.InvitationRow{ID: inv.ID, Email: inv.Email, Role: inv.Role, ExpiresAt: inv.ExpiresAt})
		}
	}
	return v, nil
}

func (s *Server) webAccount(c *fiber.Ctx) error {
	v, err := s.accountView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.Account(v))
}

// renderAccountWith renders /account with a form's outcome filled in.
func (s *Server) renderAccountWith(c *fiber.Ctx, fill func(*views.AccountView)) error {
	v, err := s.accountView(c)
	if err != nil {
		return err
	}
	fill(&v)
	return s.render(c, views.Account(v))
}

// webSignOutEverywhere ends every other session of the user.
func (s *Server) webSignOutEverywhere(c *fiber.Ctx) error {
	id := who(c)
	n, err := s.store.EndOtherSessions(c.UserContext(), s.actor(c), id.User.ID, id.SessionID)
	if err != nil {
		return s.refuse(c, "/account", "Could not sign out the other sessions", err)
	}
	return s.redirect(c, "/account", "success", fmt.Sprintf("Signed out %d other session%s.", n, plural(int(n))))
}
