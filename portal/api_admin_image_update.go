package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminImageUpdate(c *fiber.Ctx) error {
	var req imageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input(true)
	if err != nil {
		return err
	}
	im, err := s.store.UpdateImage(c.UserContext(), s.actor(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(toAdminImageJSON(im))
}
