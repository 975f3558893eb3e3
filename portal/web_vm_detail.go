package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// vmDetailView loads one of the tenant's VMs; another tenant's id is not found.
func (s *Server) vmDetailView(c *fiber.Ctx, vmID string) (views.VMDetailView, error) {
	d, err := s.store.GetVM(c.UserContext(), who(c).User.Tenant(), vmID)
	if err != nil {
		return views.VMDetailView{}, err
	}
	v := views.VMDetailView{
		VM: views.VMInfo{
			ID: d.ID, Name: d.Name, State: d.State, DesiredState: d.DesiredState, Plan: d.PlanName,
			VCPUs: int(d.VCPUs), MemoryMiB: d.MemoryMiB, DiskGiB: d.DiskGiB, Image: d.ImageName, IP: d.IP,
			CreatedAt: d.CreatedAt, LastError: d.LastError,
		},
		CanWrite: who(c).canWriteTenant(),
	}
	if v.VM.DNSName, err = s.vmDNSName(c, d.VMSummary); err != nil {
		return views.VMDetailView{}, err
	}
	for _, k := range d.Keys {
		v.VM.Keys = append(v.VM.Keys, k.Name)
	}
	for _, st := range d.Steps {
		v.Timeline = append(v.Timeline, views.TimelineStep{Step: st.Step, State: st.State, Message: st.Message,
			StartedAt: st.StartedAt, FinishedAt: deref(st.FinishedAt)})
	}
	for _, op := range d.Operations {
		v.Operations = append(v.Operations, views.OperationRow{Type: op.Type, State: op.State, Message: op.Message,
			CreatedAt: op.CreatedAt, FinishedAt: deref(op.FinishedAt)})
	}
	return v, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) webVMDetail(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	v.Page = s.page(c, v.VM.Name, "vms")
	return s.render(c, views.VMDetail(v))
}

// webVMStatus is the block the detail page polls. It leaves the flash
// cookie alone: a fragment must not swallow the next page's message.
func (s *Server) webVMStatus(c *fiber.Ctx) error {
	v, err := s.vmDetailView(c, c.Params("id"))
	if err != nil {
		return err
	}
	v.Page.CSRF, _ = c.Locals(localCSRF).(string)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, views.VMStatus(v))
}
