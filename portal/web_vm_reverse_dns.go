package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// fillReverseDNS adds the PTR name of the VM's address to its page.
func (s *Server) fillReverseDNS(c *fiber.Ctx, v *views.VMDetailView) error {
	r, err := s.store.GetReverseDNS(c.UserContext(), who(c).User.Tenant(), v.VM.ID)
	if err != nil {
		return err
	}
	slug := who(c).Tenant.Slug
	v.ReverseDNS = views.VMReverseDNS{Default: !r.Custom(), OwnName: s.dnsName(r.VMName, slug)}
	if r.Address.IsValid() {
		v.ReverseDNS.Address, v.ReverseDNS.Name = r.Address.String(), s.reverseName(r, slug)
	}
	if r.Custom() {
		v.ReverseDNS.Input = v.ReverseDNS.Name
	}
	return nil
}

// webVMReverseDNS sets the PTR name of the VM's address, or with an empty
// one returns it to the VM's own name; a refusal shows the page again with
// the name as typed and the reason at the field.
func (s *Server) webVMReverseDNS(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	typed := c.FormValue("ptr")
	r, err := s.store.SetReverseDNS(c.UserContext(), s.actor(c), who(c).User.Tenant(), v.VM.ID,
		store.ReverseDNSInput{Name: typed, Zone: s.cfg.Zone})
	if err != nil {
		errs, err := formFailure(c, err, "ptr")
		if err != nil {
			return err
		}
		v.Page, v.Errors = s.page(c, v.VM.Name, "vms"), errs
		v.ReverseDNS.Input = typed
		return s.render(c, views.VMDetail(v))
	}
	name := s.reverseName(r, who(c).Tenant.Slug)
	msg := "The reverse name of " + r.Address.String() + " is now " + name + "."
	if !r.Custom() {
		msg = "The reverse name of " + r.Address.String() + " is the VM's own name, " + name + ", again."
	}
	return s.redirect(c, vmPagePath(v.VM.ID), "success", msg)
}
