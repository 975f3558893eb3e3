package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminUsersView lists users for ?q=&page= (the create form posts without
// them, so a refused create shows the first page).
func (s *Server) adminUsersView(c *fiber.Ctx) (views.AdminUsersView, error) {
	q, p := c.Query("q"), pageOf(c)
	us, total, err := s.store.ListUsers(c.UserContext(), q, p)
	if err != nil {
		return views.AdminUsersView{}, err
	}
	v := views.AdminUsersView{Page: s.page(c, "Users", "admin-users"), Query: q, Pager: pager(c, p, total, "q"),
		Users: make([]views.AdminUserRow, len(us))}
	for i, u := range us {
		v.Users[i] = views.AdminUserRow{ID: u.ID, Email: u.Email, Tenant: u.TenantName, Role: u.Role, CreatedAt: u.CreatedAt}
		v.Users[i].TwoFactor = u.TwoFactor()
		if u.LastLoginAt != nil {
			v.Users[i].LastLoginAt = *u.LastLoginAt
		}
	}
	if v.StaffTwoFactor, err = s.store.StaffTwoFactorRequired(c.UserContext()); err != nil {
		return views.AdminUsersView{}, err
	}
	reqs, _, err := s.store.PasswordResetRequests(c.UserContext(), store.Page{Number: 1, PerPage: 50})
	if err != nil {
		return views.AdminUsersView{}, err
	}
	for _, r := range reqs {
		v.ResetRequests = append(v.ResetRequests, views.AdminResetRequestRow{UserID: r.UserID, Email: r.Email, Tenant: r.TenantName,
			SourceIP: r.SourceIP, CreatedAt: r.CreatedAt})
	}
	return v, nil
}

// webAdminPasswordReset makes a one-time password reset link for a user and
// shows it this once, for staff to hand over.
func (s *Server) webAdminPasswordReset(c *fiber.Ctx) error {
	l, err := s.store.CreatePasswordResetLink(c.UserContext(), s.actor(c), strings.Clone(c.Params("id")))
	var link *views.AdminResetLink
	if err == nil {
		link = &views.AdminResetLink{Email: l.Email, URL: s.resetURL(l.Token), ExpiresAt: l.ExpiresAt}
	}
	var errs views.FormErrors
	if err != nil {
		if errs, err = formFailure(c, err); err != nil {
			return err
		}
	}
	v, err := s.adminUsersView(c)
	if err != nil {
		return err
	}
	v.ResetLink, v.ResetErrors = link, errs
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, views.AdminUsers(v))
}

// webAdminStaffTwoFactor requires or stops requiring a second factor for
// staff accounts.
func (s *Server) webAdminStaffTwoFactor(c *fiber.Ctx) error {
	on := c.FormValue("required") == "true"
	err := s.store.SetStaffTwoFactorRequired(c.UserContext(), s.actor(c), on)
	if err == nil {
		msg := "Staff accounts may now sign in without a second factor."
		if on {
			msg = "Staff accounts must now sign in with two-factor authentication."
		}
		return s.redirect(c, "/admin/users", "success", msg)
	}
	errs, err := formFailure(c, err)
	if err != nil {
		return err
	}
	v, err := s.adminUsersView(c)
	if err != nil {
		return err
	}
	v.StaffTwoFactorErrors = errs
	return s.render(c, views.AdminUsers(v))
}

// webAdminUserList shows all users, customers and staff.
func (s *Server) webAdminUserList(c *fiber.Ctx) error {
	v, err := s.adminUsersView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminUsers(v))
}

// webAdminUserCreate adds a staff account.
func (s *Server) webAdminUserCreate(c *fiber.Ctx) error {
	email, pw, role := c.FormValue("email"), c.FormValue("password"), c.FormValue("role")
	// Check the cheap things first so that a typo does not cost a bcrypt hash.
	_, err := store.NormalizeEmail(email)
	if err == nil {
		err = validPassword("password", pw, email, emailLocal(email))
	}
	if err == nil && !store.ValidStaffRole(role) {
		err = store.E(store.ErrInvalid, "role", "choose admin, operator or auditor")
	}
	if err == nil {
		var hash string
		if hash, err = s.hashPassword(pw); err == nil {
			var u store.User
			if u, err = s.store.CreateStaff(c.UserContext(), s.actor(c), email, hash, role); err == nil {
				return s.redirect(c, "/admin/users", "success", "Staff user "+u.Email+" created as "+u.Role+".")
			}
		}
	}
	errs, err := formFailure(c, err, "email", "password", "role")
	if err != nil {
		return err
	}
	v, err := s.adminUsersView(c)
	if err != nil {
		return err
	}
	v.Form, v.Errors = views.AdminUserForm{Email: email, Role: role}, errs
	return s.render(c, views.AdminUsers(v))
}
