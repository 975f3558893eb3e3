package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// imageRequest is an image as staff send it.
type imageRequest struct {
	Name      *string `json:"name"`
	OS        *string `json:"os"`
	Version   *string `json:"version"`
	SourceURL *string `json:"source_url"`
	Checksum  *string `json:"checksum"`
	Enabled   *bool   `json:"enabled"`
	// Kind is vm (default on create; unchanged on update when absent) or machine.
	Kind string `json:"kind"`
	// Optional direct boot for images without a boot loader.
	KernelURL      string `json:"kernel_url"`
	KernelChecksum string `json:"kernel_checksum"`
	InitrdURL      string `json:"initrd_url"`
	InitrdChecksum string `json:"initrd_checksum"`
}

// input checks that every field is there; enabled only when needEnabled.
func (r imageRequest) input(needEnabled bool) (store.ImageInput, error) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"name", r.Name}, {"os", r.OS}, {"version", r.Version}, {"source_url", r.SourceURL}, {"checksum", r.Checksum}} {
		if f.v == nil {
			return store.ImageInput{}, errMissing(f.name)
		}
	}
	if r.Enabled == nil && needEnabled {
		return store.ImageInput{}, errMissing("enabled")
	}
	in := store.ImageInput{Name: *r.Name, OS: *r.OS, Version: *r.Version, SourceURL: *r.SourceURL, Checksum: *r.Checksum,
		KernelURL: r.KernelURL, KernelChecksum: r.KernelChecksum, InitrdURL: r.InitrdURL, InitrdChecksum: r.InitrdChecksum, Kind: r.Kind, Enabled: true}
	if r.Enabled != nil {
		in.Enabled = *r.Enabled
	}
	return in, nil
}

func (s *Server) apiAdminImageCreate(c *fiber.Ctx) error {
	var req imageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input(false)
	if err != nil {
		return err
	}
	im, err := s.store.CreateImage(c.UserContext(), s.actor(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toAdminImageJSON(im))
}
