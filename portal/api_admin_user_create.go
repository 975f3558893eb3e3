package portal

import "github.com/gofiber/fiber/v2"

type staffCreateRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func (s *Server) apiAdminUserCreate(c *fiber.Ctx) error {
	var req staffCreateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := validPassword("password", req.Password, req.Email, emailLocal(req.Email)); err != nil {
		return err
	}
	hash, err := s.hashPassword(req.Password)
	if err != nil {
		return err
	}
	u, err := s.store.CreateStaff(c.UserContext(), s.actor(c), req.Email, hash, req.Role)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toUserJSON(u))
}
