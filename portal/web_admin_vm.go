package portal

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// webAdminVM shows any tenant's VM to staff: what the customer sees, plus
// placement and the steps' staff-only detail.
func (s *Server) webAdminVM(c *fiber.Ctx) error {
	d, err := s.store.GetVM(c.UserContext(), "", c.Params("id"))
	if err != nil {
		return err
	}
	dns, err := s.vmDNSName(c, d.VMSummary)
	if err != nil {
		return err
	}
	v := views.AdminVMView{
		Page: s.page(c, d.Name, "admin-vms"),
		VM: views.VMInfo{ID: d.ID, Name: d.Name, State: d.State, DesiredState: d.DesiredState, Plan: d.PlanName,
			VCPUs: int(d.VCPUs), MemoryMiB: d.MemoryMiB, DiskGiB: d.DiskGiB, Image: d.ImageName, IP: d.IP, DNSName: dns,
			CreatedAt: d.CreatedAt, LastError: d.LastError},
		TenantID: d.TenantID, TenantName: d.TenantName, MAC: d.MAC, Attempts: d.Attempts,
	}
	if d.HostID != nil && *d.HostID != "" {
		hosts, err := s.hostRefs(c)
		if err != nil {
			return err
		}
		v.HostID, v.HostName = *d.HostID, hosts[*d.HostID]
	}
	for _, k := range d.Keys {
		v.VM.Keys = append(v.VM.Keys, k.Name)
	}
	for _, st := range d.Steps {
		v.Timeline = append(v.Timeline, views.AdminTimelineStep{Step: st.Step, State: st.State, Message: st.Message, Detail: st.Detail,
			StartedAt: st.StartedAt, FinishedAt: deref(st.FinishedAt)})
	}
	for _, op := range d.Operations {
		v.Operations = append(v.Operations, views.OperationRow{Type: op.Type, State: op.State, Message: op.Message,
			CreatedAt: op.CreatedAt, FinishedAt: deref(op.FinishedAt)})
	}
	return s.render(c, views.AdminVM(v))
}

// webAdminVMRetry sends a VM in state error back to the provisioner.
func (s *Server) webAdminVMRetry(c *fiber.Ctx) error {
	id := c.Params("id")
	back := "/admin/vms/" + url.PathEscape(id)
	if err := s.store.RetryVM(c.UserContext(), s.actor(c), id); err != nil {
		if he := classify(err); he.status == fiber.StatusConflict {
			return s.redirect(c, back, "error", capitalize(he.message)+".")
		}
		return err
	}
	return s.redirect(c, back, "success", "Retry queued; the provisioner picks the VM up again.")
}
