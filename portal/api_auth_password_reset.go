package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiForgotPassword asks for a reset link; the answer is the same whether
// or not the email has an account.
func (s *Server) apiForgotPassword(c *fiber.Ctx) error {
	var req struct {
		Email string `json:"email"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	email := strings.TrimSpace(req.Email)
	if err := s.requestPasswordReset(c, email); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"message": s.resetRequestAnswer(email)})
}

// apiResetPassword sets a new password with the token of a reset link.
func (s *Server) apiResetPassword(c *fiber.Ctx) error {
	var req struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return store.E(store.ErrInvalid, "token", "token is required: the part of the reset link after /password/reset/")
	}
	if _, err := s.resetPassword(c, req.Token, req.Password, req.Password); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
