package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminImageFields are the image form's inputs besides the enabled checkbox.
func adminImageFields() []string {
	return []string{"name", "os", "version", "kind", "source_url", "checksum"}
}

// adminImageForm reads a submitted image form; the store trims and checks it.
func adminImageForm(c *fiber.Ctx, withEnabled bool) (store.ImageInput, views.AdminImageForm) {
	f := views.AdminImageForm{Name: c.FormValue("name"), OS: c.FormValue("os"), Version: c.FormValue("version"),
		SourceURL: c.FormValue("source_url"), Checksum: c.FormValue("checksum"), Kind: c.FormValue("kind")}
	if withEnabled {
		f.Enabled = c.FormValue("enabled") == "on"
	}
	return store.ImageInput{Name: f.Name, OS: f.OS, Version: f.Version, SourceURL: f.SourceURL, Checksum: f.Checksum, Kind: f.Kind, Enabled: f.Enabled}, f
}

func (s *Server) adminImagesView(c *fiber.Ctx) (views.AdminImagesView, error) {
	ims, err := s.store.ListImages(c.UserContext(), false, "")
	if err != nil {
		return views.AdminImagesView{}, err
	}
	v := views.AdminImagesView{Page: s.page(c, "Images", "admin-images"), Images: make([]views.AdminImageRow, len(ims))}
	for i, im := range ims {
		v.Images[i] = views.AdminImageRow{ID: im.ID, Name: im.Name, OS: im.OS, Version: im.Version, SourceURL: im.SourceURL,
			Checksum: im.Checksum, Kind: im.Kind, Enabled: im.Enabled}
	}
	return v, nil
}

// webAdminImageList shows every image, enabled or not.
func (s *Server) webAdminImageList(c *fiber.Ctx) error {
	v, err := s.adminImagesView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminImages(v))
}

// webAdminImageCreate registers an image; new images are offered at once.
func (s *Server) webAdminImageCreate(c *fiber.Ctx) error {
	in, form := adminImageForm(c, false)
	in.Enabled = true
	im, err := s.store.CreateImage(c.UserContext(), s.actor(c), in)
	if err == nil {
		return s.redirect(c, "/admin/images", "success", "Image "+im.Name+" added.")
	}
	errs, err := formFailure(c, err, adminImageFields()...)
	if err != nil {
		return err
	}
	v, err := s.adminImagesView(c)
	if err != nil {
		return err
	}
	v.Form, v.Errors = form, errs
	return s.render(c, views.AdminImages(v))
}
