package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) webVMList(c *fiber.Ctx) error {
	p := pageOf(c)
	vms, total, err := s.store.ListVMs(c.UserContext(), who(c).User.Tenant(), p)
	if err != nil {
		return err
	}
	v := views.VMListView{Page: s.page(c, "Virtual machines", "vms"), Pager: pager(c, p, total)}
	for _, vm := range vms {
		v.VMs = append(v.VMs, vmRow(vm))
	}
	return s.render(c, views.VMList(v))
}

func vmRow(vm store.VMSummary) views.VMRow {
	return views.VMRow{ID: vm.ID, Name: vm.Name, State: vm.State, Plan: vm.PlanName, Image: vm.ImageName, IP: vm.IP, CreatedAt: vm.CreatedAt}
}
