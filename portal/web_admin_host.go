package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminHostView loads a host's page with its settings form filled from the
// saved values.
func (s *Server) adminHostView(c *fiber.Ctx, id string) (views.AdminHostView, store.HostSummary, error) {
	ctx := c.UserContext()
	h, err := s.store.GetHost(ctx, id)
	if err != nil {
		return views.AdminHostView{}, h, err
	}
	v := views.AdminHostView{Page: s.page(c, "Host "+h.Name, "admin-hosts"), Host: adminHostRow(h), CPUModel: h.CPUModel,
		StoragePool: h.StoragePool, Bridge: h.Bridge, DiskFreeGiB: h.DiskFreeGiB, Fingerprint: hostKeyFingerprint(h.SSHHostKey),
		RefreshedAt: h.RefreshedAt,
		Form: views.AdminHostSettingsForm{CPURatio: strconvFloat(h.CPURatio), MemoryRatio: strconvFloat(h.MemoryRatio), DiskRatio: strconvFloat(h.DiskRatio),
			ReservedCores: i64s(h.ReservedCores), ReservedMemoryMiB: i64s(h.ReservedMemoryMiB), ReservedDiskGiB: i64s(h.ReservedDiskGiB),
			Maintenance: h.Maintenance, Enabled: h.Enabled}}
	vms, err := s.hostVMs(c, h.ID)
	if err != nil {
		return views.AdminHostView{}, h, err
	}
	v.VMs = vms
	return v, h, nil
}

// hostVMs lists the VMs placed on a host. The store has no filter by host,
// so this reads the staff list page by page; hosts hold few enough VMs.
func (s *Server) hostVMs(c *fiber.Ctx, hostID string) ([]views.AdminVMRow, error) {
	var out []views.AdminVMRow
	for page := 1; ; page++ {
		vms, total, err := s.store.ListAllVMs(c.UserContext(), store.VMFilter{}, store.Page{Number: page, PerPage: store.MaxPerPage})
		if err != nil {
			return nil, err
		}
		for _, vm := range vms {
			if vm.HostID != nil && *vm.HostID == hostID {
				out = append(out, views.AdminVMRow{ID: vm.ID, Name: vm.Name, TenantID: vm.TenantID, TenantName: vm.TenantName,
					State: vm.State, Plan: vm.PlanName, Image: vm.ImageName, CreatedAt: vm.CreatedAt})
			}
		}
		if page*store.MaxPerPage >= total || len(vms) == 0 {
			return out, nil
		}
	}
}

// webAdminHost shows a host's facts, capacity, settings and VMs.
func (s *Server) webAdminHost(c *fiber.Ctx) error {
	v, _, err := s.adminHostView(c, c.Params("id"))
	if err != nil {
		return err
	}
	return s.render(c, views.AdminHost(v))
}

// webAdminHostUpdate saves the settings form.
func (s *Server) webAdminHostUpdate(c *fiber.Ctx) error {
	v, h, err := s.adminHostView(c, c.Params("id"))
	if err != nil {
		return err
	}
	n, errs := readHostNumbers(c, false)
	v.Form = views.AdminHostSettingsForm{CPURatio: n.raw[0], MemoryRatio: n.raw[1], DiskRatio: n.raw[2], ReservedCores: n.raw[3],
		ReservedMemoryMiB: n.raw[4], ReservedDiskGiB: n.raw[5], Maintenance: c.FormValue("maintenance") == "on", Enabled: c.FormValue("enabled") == "on"}
	if errs == nil {
		_, err := s.store.UpdateHost(c.UserContext(), s.actor(c), h.ID, store.HostSettings{CPURatio: n.ratios[0], MemoryRatio: n.ratios[1],
			DiskRatio: n.ratios[2], ReservedCores: n.reserved[0], ReservedMemoryMiB: n.reserved[1], ReservedDiskGiB: n.reserved[2],
			Maintenance: v.Form.Maintenance, Enabled: v.Form.Enabled})
		if err == nil {
			return s.redirect(c, adminHostPath(h.ID), "success", "Host "+h.Name+" saved.")
		}
		if errs, err = formFailure(c, err, adminHostFields()...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v.Errors = errs
	return s.render(c, views.AdminHost(v))
}

// webAdminHostDelete removes a host once staff tick the confirmation.
func (s *Server) webAdminHostDelete(c *fiber.Ctx) error {
	id := c.Params("id")
	h, err := s.store.GetHost(c.UserContext(), id)
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "on" {
		return s.redirect(c, adminHostPath(h.ID), "error", "Tick the confirmation to delete "+h.Name+".")
	}
	if err := s.store.DeleteHost(c.UserContext(), s.actor(c), h.ID); err != nil {
		if he := classify(err); he.status == fiber.StatusConflict {
			return s.redirect(c, adminHostPath(h.ID), "error", capitalize(he.message)+".")
		}
		return err
	}
	return s.redirect(c, "/admin/hosts", "success", "Host "+h.Name+" deleted.")
}
