package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// adminImageEditView loads the image with id; GetImage also matches names,
// but the edit page lives at the image's id only.
func (s *Server) adminImageEditView(c *fiber.Ctx, id string) (views.AdminImageEditView, error) {
	im, err := s.store.GetImage(c.UserContext(), id)
	if err != nil {
		return views.AdminImageEditView{}, err
	}
	if im.ID != id {
		return views.AdminImageEditView{}, errNotFound("image")
	}
	return views.AdminImageEditView{
		Page: s.page(c, "Image "+im.Name, "admin-images"), ID: im.ID, Name: im.Name,
		Form: views.AdminImageForm{Name: im.Name, OS: im.OS, Version: im.Version, SourceURL: im.SourceURL, Checksum: im.Checksum, Kind: im.Kind, Enabled: im.Enabled},
	}, nil
}

// webAdminImageEdit shows the form for one image.
func (s *Server) webAdminImageEdit(c *fiber.Ctx) error {
	v, err := s.adminImageEditView(c, c.Params("id"))
	if err != nil {
		return err
	}
	return s.render(c, views.AdminImageEdit(v))
}

// webAdminImageUpdate changes an image; unticking enabled stops new orders
// with it while existing VMs keep running.
func (s *Server) webAdminImageUpdate(c *fiber.Ctx) error {
	v, err := s.adminImageEditView(c, c.Params("id"))
	if err != nil {
		return err
	}
	in, form := adminImageForm(c, true)
	im, err := s.store.UpdateImage(c.UserContext(), s.actor(c), v.ID, in)
	if err == nil {
		return s.redirect(c, "/admin/images", "success", "Image "+im.Name+" saved.")
	}
	if v.Errors, err = formFailure(c, err, append(adminImageFields(), "enabled")...); err != nil {
		return err
	}
	v.Form = form
	return s.render(c, views.AdminImageEdit(v))
}
