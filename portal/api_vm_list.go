package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func (s *Server) apiVMList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	vms, total, err := s.store.ListVMs(c.UserContext(), who(c).User.Tenant(), p)
	if err != nil {
		return err
	}
	items, err := s.vmItems(c, vms)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, p, total))
}

// vmItems describes a page of VMs, loading their keys in one go.
func (s *Server) vmItems(c *fiber.Ctx, vms []store.VMSummary) ([]vmJSON, error) {
	ids := make([]string, len(vms))
	for i, v := range vms {
		ids[i] = v.ID
	}
	keys, err := s.store.VMKeyIDs(c.UserContext(), ids)
	if err != nil {
		return nil, err
	}
	slugs, err := s.tenantSlugs(c, vms)
	if err != nil {
		return nil, err
	}
	items := make([]vmJSON, len(vms))
	for i, v := range vms {
		items[i] = toVMJSON(v, keys[v.ID])
		items[i].DNSName = s.dnsName(v.Name, slugs[v.TenantID])
	}
	return items, nil
}
