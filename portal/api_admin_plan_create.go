package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// planRequest is a plan as staff send it; pointers tell a missing figure
// from zero.
type planRequest struct {
	Name      *string `json:"name"`
	VCPUs     *int64  `json:"vcpus"`
	MemoryMiB *int64  `json:"memory_mib"`
	DiskGiB   *int64  `json:"disk_gib"`
	Enabled   *bool   `json:"enabled"`
}

// input checks that every field is there; enabled only when needEnabled.
func (r planRequest) input(needEnabled bool) (store.PlanInput, error) {
	switch {
	case r.Name == nil:
		return store.PlanInput{}, errMissing("name")
	case r.VCPUs == nil:
		return store.PlanInput{}, errMissing("vcpus")
	case r.MemoryMiB == nil:
		return store.PlanInput{}, errMissing("memory_mib")
	case r.DiskGiB == nil:
		return store.PlanInput{}, errMissing("disk_gib")
	case r.Enabled == nil && needEnabled:
		return store.PlanInput{}, errMissing("enabled")
	}
	in := store.PlanInput{Name: *r.Name, VCPUs: *r.VCPUs, MemoryMiB: *r.MemoryMiB, DiskGiB: *r.DiskGiB, Enabled: true}
	if r.Enabled != nil {
		in.Enabled = *r.Enabled
	}
	return in, nil
}

func (s *Server) apiAdminPlanCreate(c *fiber.Ctx) error {
	var req planRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input(false)
	if err != nil {
		return err
	}
	p, err := s.store.CreatePlan(c.UserContext(), s.actor(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toAdminPlanJSON(p, 0))
}
