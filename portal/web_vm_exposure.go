package portal

import "github.com/gofiber/fiber/v2"

// webVMExposure sets both web exposure checkboxes at once, as the form shows them.
func (s *Server) webVMExposure(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	httpOn, httpsOn := c.FormValue("expose_http") == "on", c.FormValue("expose_https") == "on"
	if _, err := s.store.SetVMExposure(c.UserContext(), s.actor(c), who(c).User.Tenant(), v.VM.ID, &httpOn, &httpsOn, nil); err != nil {
		return err
	}
	return s.redirect(c, vmPagePath(v.VM.ID), "success", "Public access of "+v.VM.Name+" saved.")
}

func vmPagePath(id string) string { return "/vms/" + id }
