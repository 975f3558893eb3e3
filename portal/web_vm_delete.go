package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) webVMDelete(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	if c.FormValue("confirm_name") != v.VM.Name {
		c.Status(fiber.StatusUnprocessableEntity)
		v.Page = s.page(c, v.VM.Name, "vms")
		v.Errors = views.FormErrors{"confirm_name": "type the name of the VM, " + v.VM.Name + ", exactly to confirm"}
		return s.render(c, views.VMDetail(v))
	}
	if _, err := s.store.RequestAction(c.UserContext(), s.actor(c), who(c).User.Tenant(), v.VM.ID, store.OpDelete); err != nil {
		errs, err := formFailure(c, err, "confirm_name")
		if err != nil {
			return err
		}
		v.Page, v.Errors = s.page(c, v.VM.Name, "vms"), errs
		return s.render(c, views.VMDetail(v))
	}
	return s.redirect(c, "/vms", "success", "Deletion of "+v.VM.Name+" queued; its disk will be erased.")
}
