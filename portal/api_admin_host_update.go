package portal

import "github.com/gofiber/fiber/v2"

// apiAdminHostUpdate changes the fields sent and keeps the rest. Two staff
// patching different fields at the same moment may undo each other's
// change; host settings are rare enough edits for that to be acceptable.
func (s *Server) apiAdminHostUpdate(c *fiber.Ctx) error {
	var req hostPatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	h, err := s.store.GetHost(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	if _, err := s.store.UpdateHost(ctx, s.actor(c), h.ID, req.apply(h.Host)); err != nil {
		return err
	}
	if h, err = s.store.GetHost(ctx, h.ID); err != nil {
		return err
	}
	return c.JSON(toHostJSON(h))
}
