package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type forwardCreateRequest struct {
	VM         string `json:"vm"`
	PublicPort int    `json:"public_port"` // 0 or absent: the lowest free port
	TargetPort int    `json:"target_port"`
}

func (s *Server) apiForwardCreate(c *fiber.Ctx) error {
	var req forwardCreateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	f, err := s.store.CreatePortForward(c.UserContext(), s.actor(c), who(c).User.Tenant(),
		store.PortForwardInput{VMID: req.VM, PublicPort: req.PublicPort, TargetPort: req.TargetPort},
		s.cfg.ForwardPortMin, s.cfg.ForwardPortMax)
	if err != nil {
		return renameField(err, "vm_id", "vm")
	}
	return c.Status(fiber.StatusCreated).JSON(s.toForwardJSON(f))
}

// renameField gives a store error the name the API uses for the field.
func renameField(err error, from, to string) error {
	if e, ok := store.AsError(err); ok && e.Field == from {
		cp := *e
		cp.Field = to
		return &cp
	}
	return err
}
