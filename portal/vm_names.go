package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// dnsName is the name a VM answers to: <vm>.<tenant slug>.<zone>.
func (s *Server) dnsName(vm, slug string) string {
	if vm == "" || slug == "" {
		return ""
	}
	return vm + "." + slug + "." + s.cfg.Zone
}

// tenantSlugs maps the tenants of vms to their slugs. A customer's own
// tenant comes from the identity; staff lists load each tenant once.
func (s *Server) tenantSlugs(c *fiber.Ctx, vms []store.VMSummary) (map[string]string, error) {
	out := map[string]string{}
	if t := who(c).Tenant; t != nil {
		out[t.ID] = t.Slug
	}
	for _, v := range vms {
		if _, ok := out[v.TenantID]; ok {
			continue
		}
		t, err := s.store.GetTenant(c.UserContext(), v.TenantID)
		if err != nil {
			return nil, err
		}
		out[v.TenantID] = t.Slug
	}
	return out, nil
}

// vmDNSName is dnsName for one VM.
func (s *Server) vmDNSName(c *fiber.Ctx, v store.VMSummary) (string, error) {
	slugs, err := s.tenantSlugs(c, []store.VMSummary{v})
	if err != nil {
		return "", err
	}
	return s.dnsName(v.Name, slugs[v.TenantID]), nil
}

// hostRefs maps host ids to names, for the staff views of VMs.
func (s *Server) hostRefs(c *fiber.Ctx) (map[string]string, error) {
	hosts, err := s.store.ListHosts(c.UserContext())
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(hosts))
	for _, h := range hosts {
		out[h.ID] = h.Name
	}
	return out, nil
}

// hostRef is the {id, name} of the host a VM is placed on; nil while unplaced.
func hostRef(hostID *string, names map[string]string) *refJSON {
	if hostID == nil || *hostID == "" {
		return nil
	}
	return &refJSON{ID: *hostID, Name: names[*hostID]}
}

// adminVMItems describes VMs for staff: the customer's view plus tenant
// and host.
func (s *Server) adminVMItems(c *fiber.Ctx, vms []store.VMSummary) ([]adminVMJSON, error) {
	base, err := s.vmItems(c, vms)
	if err != nil {
		return nil, err
	}
	hosts, err := s.hostRefs(c)
	if err != nil {
		return nil, err
	}
	items := make([]adminVMJSON, len(vms))
	for i, v := range vms {
		items[i] = adminVMJSON{vmJSON: base[i], TenantID: v.TenantID, TenantName: v.TenantName, Host: hostRef(v.HostID, hosts)}
	}
	return items, nil
}
