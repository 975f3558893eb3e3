package portal

import (
	"github.com/gofiber/fiber/v2"
)

type twoFactorSetupResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

type twoFactorCodeRequest struct {
	Code string `json:"code"`
}

type twoFactorDisableRequest struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// apiTwoFactorSetup starts enrolment: the secret for the app, in waiting
// until a code from it is confirmed.
func (s *Server) apiTwoFactorSetup(c *fiber.Ctx) error {
	secret, uri, err := s.beginTwoFactor(c, who(c).User)
	if err != nil {
		return err
	}
	return c.JSON(twoFactorSetupResponse{Secret: secret, OTPAuthURL: uri})
}

// apiTwoFactorEnable confirms the app's first code; the recovery codes
// are in this answer only.
func (s *Server) apiTwoFactorEnable(c *fiber.Ctx) error {
	var req twoFactorCodeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	codes, err := s.enableTwoFactor(c, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(recoveryCodesResponse{RecoveryCodes: codes})
}

// apiRecoveryCodes replaces the recovery codes for a current code.
func (s *Server) apiRecoveryCodes(c *fiber.Ctx) error {
	var req twoFactorCodeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	codes, err := s.renewRecoveryCodes(c, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(recoveryCodesResponse{RecoveryCodes: codes})
}

// apiTwoFactorDisable turns two-factor sign-in off for the password and a
// code.
func (s *Server) apiTwoFactorDisable(c *fiber.Ctx) error {
	var req twoFactorDisableRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.disableTwoFactor(c, req.Password, req.Code); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
