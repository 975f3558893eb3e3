package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type vmCreateRequest struct {
	Name     string   `json:"name"`
	Plan     string   `json:"plan"`
	Image    string   `json:"image"`
	Snapshot string   `json:"snapshot"`
	SSHKeys  []string `json:"ssh_keys"`
	UserData string   `json:"user_data"`
}

// apiVMCreate records the order; the VM stays pending until the provisioner
// picks it up.
func (s *Server) apiVMCreate(c *fiber.Ctx) error {
	var req vmCreateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx, tenant := c.UserContext(), who(c).User.Tenant()
	vm, err := s.store.CreateVM(ctx, s.actor(c), tenant, store.VMOrder{
		Name: req.Name, Plan: req.Plan, Image: req.Image, Snapshot: req.Snapshot, SSHKeys: req.SSHKeys, UserData: req.UserData,
	})
	if err != nil {
		return err
	}
	d, err := s.store.GetVM(ctx, tenant, vm.ID)
	if err != nil {
		return err
	}
	out := toVMDetailJSON(d).vmJSON
	if out.DNSName, err = s.vmDNSName(c, d.VMSummary); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}
