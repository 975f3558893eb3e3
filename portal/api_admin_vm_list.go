package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// listableVMState tells the states a staff list may be filtered by.
func listableVMState(s string) bool {
	switch s {
	case store.VMPending, store.VMProvisioning, store.VMRunning, store.VMStopped, store.VMStarting,
		store.VMStopping, store.VMRebooting, store.VMRebuilding, store.VMDeleting, store.VMError:
		return true
	}
	return false
}

// apiAdminVMList lists every tenant's VMs: ?tenant= matches part of the
// tenant's name, ?tenant_id= one tenant exactly, ?state= one state.
func (s *Server) apiAdminVMList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	f := store.VMFilter{TenantID: c.Query("tenant_id"), Tenant: c.Query("tenant"), State: c.Query("state")}
	if f.State != "" && !listableVMState(f.State) {
		return errBadQuery("state", "unknown state "+f.State)
	}
	vms, total, err := s.store.ListAllVMs(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	items, err := s.adminVMItems(c, vms)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, p, total))
}
