package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiAdminImageList(c *fiber.Ctx) error {
	images, err := s.store.ListImages(c.UserContext(), false, "")
	if err != nil {
		return err
	}
	items := make([]adminImageJSON, len(images))
	for i, im := range images {
		items[i] = toAdminImageJSON(im)
	}
	return c.JSON(newItems(items))
}
