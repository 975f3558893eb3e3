package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// reverseDNSRequest sets the PTR name; the empty string returns it to the
// VM's own name. It must be given, so that {} clears nothing by accident.
type reverseDNSRequest struct {
	PTR *string `json:"ptr"`
}

// apiVMReverseDNSSet sets or clears the PTR name of the VM's address.
func (s *Server) apiVMReverseDNSSet(c *fiber.Ctx) error {
	var req reverseDNSRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.PTR == nil {
		return store.E(store.ErrInvalid, "ptr", "give ptr: the full name for the VM's address, or an empty string for the VM's own name")
	}
	r, err := s.store.SetReverseDNS(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id"),
		store.ReverseDNSInput{Name: *req.PTR, Zone: s.cfg.Zone})
	if err != nil {
		return err
	}
	return c.JSON(s.toReverseDNSJSON(r, who(c).Tenant.Slug))
}
