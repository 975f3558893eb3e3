package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// webVMPasswordReset resets the console password from the console page and
// answers with the one page that shows it.
func (s *Server) webVMPasswordReset(c *fiber.Ctx) error {
	vmID := c.Params("id")
	vm, err := s.store.GetVM(c.UserContext(), who(c).User.Tenant(), vmID)
	if err != nil {
		return err
	}
	back := "/vms/" + vm.ID
	pw, _, err := s.resetVMPassword(c, vm.ID)
	if err != nil {
		return s.refuse(c, back, "Could not reset the console password of "+vm.Name, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, views.VMPasswordReset(views.VMPasswordResetView{
		Page:     s.page(c, "Console password of "+vm.Name, "vms"),
		VM:       views.VMInfo{ID: vm.ID, Name: vm.Name, State: vm.State},
		Password: pw,
	}))
}
