package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// securityJSON is the staff sign-in policy.
type securityJSON struct {
	StaffTwoFactorRequired *bool `json:"staff_two_factor_required"`
}

func (s *Server) apiAdminSecurity(c *fiber.Ctx) error {
	on, err := s.store.StaffTwoFactorRequired(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(securityJSON{StaffTwoFactorRequired: &on})
}

// apiAdminSecurityUpdate requires or stops requiring a second factor for
// staff accounts.
func (s *Server) apiAdminSecurityUpdate(c *fiber.Ctx) error {
	var req securityJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.StaffTwoFactorRequired == nil {
		return store.E(store.ErrInvalid, "staff_two_factor_required", "staff_two_factor_required is required: true or false")
	}
	if err := s.store.SetStaffTwoFactorRequired(c.UserContext(), s.actor(c), *req.StaffTwoFactorRequired); err != nil {
		return err
	}
	return s.apiAdminSecurity(c)
}
