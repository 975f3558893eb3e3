package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func (s *Server) webVMAction(c *fiber.Ctx) error {
	vmID, action := c.Params("id"), c.FormValue("type")
	v, err := s.vmDetailView(c, vmID)
	if err != nil {
		return err
	}
	back := "/vms/" + v.VM.ID
	if action == store.OpDelete {
		// Deleting erases the disk, so it goes through the form that asks
		// for the name.
		return s.redirect(c, back, "error", "Use the delete form at the bottom of the page to delete "+v.VM.Name+".")
	}
	req := vmActionRequest{Type: action, Plan: c.FormValue("plan"), Image: c.FormValue("image")}
	if _, err := s.requestVMAction(c, v.VM.ID, req); err != nil {
		return s.refuse(c, back, "Could not "+actionVerb(action)+" "+v.VM.Name, err)
	}
	return s.redirect(c, back, "success", capitalize(action)+" of "+v.VM.Name+" queued.")
}

func actionVerb(action string) string {
	if store.ValidAction(action) {
		return action
	}
	return "do that to"
}

// refuse sends the browser back to a page with the reason a change was
// refused. Errors that are not refusals (not found, server faults) go to
// the error page instead.
func (s *Server) refuse(c *fiber.Ctx, to, what string, err error) error {
	he := classify(err)
	if he.status >= 500 || he.status == fiber.StatusNotFound || he.status == fiber.StatusUnauthorized {
		return err
	}
	return s.redirect(c, to, "error", what+": "+he.message+".")
}
