package portal

import (
	"fmt"
	"net"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"

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
	if err := s.fillPublishing(c, &v); err != nil {
		return views.VMDetailView{}, err
	}
	if err := s.fillChoices(c, &v, d.ImageID); err != nil {
		return views.VMDetailView{}, err
	}
	if err := s.fillReverseDNS(c, &v); err != nil {
		return views.VMDetailView{}, err
	}
	if err := s.fillGraphs(c, &v); err != nil {
		return views.VMDetailView{}, err
	}
	if err := s.fillSnapshots(c, &v); err != nil {
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

// fillPublishing adds the ways in from outside: the SSH gateway command
// once the VM runs with an address, web exposure and port forwards.
func (s *Server) fillPublishing(c *fiber.Ctx, v *views.VMDetailView) error {
	ctx, tenant := c.UserContext(), who(c).User.Tenant()
	v.PortRange = fmt.Sprintf("%d–%d", s.cfg.ForwardPortMin, s.cfg.ForwardPortMax)
	if v.VM.State == store.VMRunning && v.VM.IP != "" && v.VM.DNSName != "" && who(c).Tenant != nil {
		slug := who(c).Tenant.Slug
		fp, err := s.store.Setting(ctx, store.SettingGatewayFingerprint)
		if err != nil {
			return err
		}
		jump := slug + "@" + s.cfg.GatewayAddress
		v.Gateway = views.GatewayAccess{
			Command: "ssh -J " + jump + " debian@" + v.VM.DNSName,
			SSHConfig: "Host " + v.VM.Name + "." + slug + "\n" +
				"    HostName " + v.VM.DNSName + "\n" +
				"    User debian\n" +
				"    ProxyJump " + jump + "\n",
			Fingerprint: fp,
		}
	}
	ex, err := s.store.GetVMExposure(ctx, tenant, v.VM.ID)
	if err != nil {
		return err
	}
	v.Exposure = views.VMExposure{HTTP: ex.HTTP, HTTPS: ex.HTTPS}
	fwds, _, err := s.store.ListPortForwards(ctx, tenant, store.Page{Number: 1, PerPage: store.MaxPerPage})
	if err != nil {
		return err
	}
	for _, f := range fwds {
		if f.VMID == v.VM.ID {
			v.Forwards = append(v.Forwards, views.ForwardRow{ID: f.ID, TargetPort: f.TargetPort,
				Address: net.JoinHostPort(s.cfg.PublicAddress, strconv.Itoa(f.PublicPort))})
		}
	}
	return nil
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
