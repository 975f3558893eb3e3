package portal

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// formInt reads an optional whole-number form field (a port, a TTL); empty is 0.
func formInt(c *fiber.Ctx, field, what string) (int, error) {
	raw := strings.TrimSpace(c.FormValue(field))
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, store.E(store.ErrInvalid, field, what+" must be a number")
	}
	return n, nil
}

func (s *Server) webVMForwardCreate(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	target, err := formInt(c, "target_port", "the VM port")
	var public int
	if err == nil {
		public, err = formInt(c, "public_port", "the public port")
	}
	var f store.PortForward
	if err == nil {
		f, err = s.store.CreatePortForward(c.UserContext(), s.actor(c), who(c).User.Tenant(),
			store.PortForwardInput{VMID: v.VM.ID, PublicPort: public, TargetPort: target}, s.cfg.ForwardPortMin, s.cfg.ForwardPortMax)
	}
	if err != nil {
		errs, err := formFailure(c, err, "target_port", "public_port")
		if err != nil {
			return err
		}
		v.Page, v.Errors = s.page(c, v.VM.Name, "vms"), errs
		return s.render(c, views.VMDetail(v))
	}
	return s.redirect(c, vmPagePath(v.VM.ID), "success",
		"Public port "+strconv.Itoa(f.PublicPort)+" now forwards to port "+strconv.Itoa(f.TargetPort)+" of "+v.VM.Name+".")
}

func (s *Server) webVMForwardDelete(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	// Only a forward of this VM, so a page never removes another VM's port.
	fid := c.Params("fid")
	found := false
	for _, f := range v.Forwards {
		found = found || f.ID == fid
	}
	if !found {
		return errNotFound("port forward")
	}
	if err := s.store.DeletePortForward(c.UserContext(), s.actor(c), who(c).User.Tenant(), fid); err != nil {
		return err
	}
	return s.redirect(c, vmPagePath(v.VM.ID), "success", "Port forward removed.")
}
