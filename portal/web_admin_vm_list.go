package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminVMStates are the states offered in the filter; deleted VMs are not
// listed at all.
func adminVMStates() []string {
	return []string{store.VMPending, store.VMProvisioning, store.VMRunning, store.VMStopped, store.VMStarting,
		store.VMStopping, store.VMRebooting, store.VMRebuilding, store.VMDeleting, store.VMError}
}

// webAdminVMList shows the VMs of all tenants, filtered by tenant name and state.
func (s *Server) webAdminVMList(c *fiber.Ctx) error {
	tenant, state, p := c.Query("tenant"), c.Query("state"), pageOf(c)
	vms, total, err := s.store.ListAllVMs(c.UserContext(), store.VMFilter{Tenant: tenant, State: state}, p)
	if err != nil {
		return err
	}
	v := views.AdminVMsView{Page: s.page(c, "VMs", "admin-vms"), Tenant: tenant, State: state, States: adminVMStates(),
		Pager: pager(c, p, total, "tenant", "state"), VMs: make([]views.AdminVMRow, len(vms))}
	for i, vm := range vms {
		v.VMs[i] = views.AdminVMRow{ID: vm.ID, Name: vm.Name, TenantID: vm.TenantID, TenantName: vm.TenantName,
			State: vm.State, Plan: vm.PlanName, Image: vm.ImageName, CreatedAt: vm.CreatedAt}
	}
	return s.render(c, views.AdminVMs(v))
}
