package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminHostCreate registers a host; it takes VMs once the provisioner
// has discovered it.
func (s *Server) apiAdminHostCreate(c *fiber.Ctx) error {
	var req hostRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	h, err := s.store.CreateHost(ctx, s.actor(c), store.HostInput{Name: req.Name, URI: req.URI,
		CPURatio: req.CPURatio, MemoryRatio: req.MemoryRatio, DiskRatio: req.DiskRatio,
		ReservedCores: req.ReservedCores, ReservedMemoryMiB: req.ReservedMemoryMiB, ReservedDiskGiB: req.ReservedDiskGiB,
		StoragePool: req.StoragePool, Bridge: req.Bridge})
	if err != nil {
		return err
	}
	sum, err := s.store.GetHost(ctx, h.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toHostJSON(sum))
}
