package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func (s *Server) apiImageList(c *fiber.Ctx) error {
	images, err := s.store.ListImages(c.UserContext(), true, store.ImageVM)
	if err != nil {
		return err
	}
	items := make([]imageJSON, len(images))
	for i, im := range images {
		items[i] = imageJSON{ID: im.ID, Name: im.Name, OS: im.OS, Version: im.Version}
	}
	return c.JSON(newItems(items))
}
