package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) adminSubnetsView(c *fiber.Ctx) (views.AdminSubnetsView, error) {
	subnets, err := s.store.ListSubnets(c.UserContext())
	if err != nil {
		return views.AdminSubnetsView{}, err
	}
	v := views.AdminSubnetsView{Page: s.page(c, "Subnets", "admin-subnets"), Subnets: make([]views.AdminSubnetRow, len(subnets))}
	for i, sn := range subnets {
		v.Subnets[i] = views.AdminSubnetRow{ID: sn.ID, Name: sn.Name, CIDR: sn.CIDR, Gateway: sn.Gateway,
			DNSServers: strings.Join(splitList(sn.DNSServers), ", "), RangeStart: sn.RangeStart, RangeEnd: sn.RangeEnd,
			Size: sn.Size, Used: sn.Used, Free: sn.Free}
	}
	return v, nil
}

// webAdminSubnetList shows the subnets with their usage and the add form.
func (s *Server) webAdminSubnetList(c *fiber.Ctx) error {
	v, err := s.adminSubnetsView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminSubnets(v))
}

// webAdminSubnetCreate adds a subnet.
func (s *Server) webAdminSubnetCreate(c *fiber.Ctx) error {
	form := views.AdminSubnetForm{Name: strings.TrimSpace(c.FormValue("name")), CIDR: strings.TrimSpace(c.FormValue("cidr")),
		Gateway: strings.TrimSpace(c.FormValue("gateway")), DNSServers: strings.TrimSpace(c.FormValue("dns_servers")),
		RangeStart: strings.TrimSpace(c.FormValue("range_start")), RangeEnd: strings.TrimSpace(c.FormValue("range_end"))}
	sn, err := s.store.CreateSubnet(c.UserContext(), s.actor(c), store.SubnetInput{Name: form.Name, CIDR: form.CIDR, Gateway: form.Gateway,
		DNSServers: strings.FieldsFunc(form.DNSServers, func(r rune) bool { return r == ',' || r == ' ' }),
		RangeStart: form.RangeStart, RangeEnd: form.RangeEnd})
	if err == nil {
		return s.redirect(c, "/admin/subnets", "success", "Subnet "+sn.Name+" added.")
	}
	errs, err := formFailure(c, err, "name", "cidr", "gateway", "dns_servers", "range_start", "range_end")
	if err != nil {
		return err
	}
	v, err := s.adminSubnetsView(c)
	if err != nil {
		return err
	}
	v.Form, v.Errors = form, errs
	return s.render(c, views.AdminSubnets(v))
}

// webAdminSubnetDelete removes a subnet; one still in use is refused with a message.
func (s *Server) webAdminSubnetDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteSubnet(c.UserContext(), s.actor(c), c.Params("id")); err != nil {
		if he := classify(err); he.status == fiber.StatusConflict {
			return s.redirect(c, "/admin/subnets", "error", capitalize(he.message)+".")
		}
		return err
	}
	return s.redirect(c, "/admin/subnets", "success", "Subnet deleted.")
}
