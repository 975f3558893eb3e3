package portal

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminBootSubnetFields are the create form's inputs, for inline errors.
func adminBootSubnetFields() []string {
	return []string{"name", "cidr", "gateway", "dns_servers", "range_start", "range_end", "lease_seconds"}
}

func adminBootSubnetRow(b bootSubnetState) views.AdminBootSubnetRow {
	return views.AdminBootSubnetRow{ID: b.ID, Name: b.Name, CIDR: b.CIDR, Gateway: b.Gateway,
		DNSServers: strings.Join(splitList(b.DNSServers), ", "), RangeStart: b.DynamicStart, RangeEnd: b.DynamicEnd,
		LeaseSeconds: b.LeaseSeconds, Size: b.Size, Used: b.Used, Free: b.Free(), Reservations: len(b.Reservations)}
}

func (s *Server) adminBootSubnetsView(c *fiber.Ctx, form views.AdminBootSubnetForm, errs views.FormErrors) (views.AdminBootSubnetsView, error) {
	subnets, err := s.bootSubnetStates(c.UserContext())
	if err != nil {
		return views.AdminBootSubnetsView{}, err
	}
	v := views.AdminBootSubnetsView{Page: s.page(c, "Boot subnets", "admin-boot-subnets"), Form: form, Errors: errs}
	for _, b := range subnets {
		v.Subnets = append(v.Subnets, adminBootSubnetRow(b))
	}
	return v, nil
}

// webAdminBootSubnetList shows the boot subnets with their usage and the add form.
func (s *Server) webAdminBootSubnetList(c *fiber.Ctx) error {
	v, err := s.adminBootSubnetsView(c, views.AdminBootSubnetForm{}, nil)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminBootSubnets(v))
}

// webAdminBootSubnetCreate adds a boot subnet; an empty lease time means
// the default.
func (s *Server) webAdminBootSubnetCreate(c *fiber.Ctx) error {
	form := views.AdminBootSubnetForm{Name: strings.TrimSpace(c.FormValue("name")), CIDR: strings.TrimSpace(c.FormValue("cidr")),
		Gateway: strings.TrimSpace(c.FormValue("gateway")), DNSServers: strings.TrimSpace(c.FormValue("dns_servers")),
		RangeStart: strings.TrimSpace(c.FormValue("range_start")), RangeEnd: strings.TrimSpace(c.FormValue("range_end")),
		LeaseSeconds: strings.TrimSpace(c.FormValue("lease_seconds"))}
	in := store.BootSubnetInput{Name: form.Name, CIDR: form.CIDR, Gateway: form.Gateway,
		DNSServers:   strings.FieldsFunc(form.DNSServers, func(r rune) bool { return r == ',' || r == ' ' }),
		DynamicStart: form.RangeStart, DynamicEnd: form.RangeEnd}
	var sn store.BootSubnet
	var err error
	if form.LeaseSeconds != "" {
		if in.LeaseSeconds, err = strconv.ParseInt(form.LeaseSeconds, 10, 64); err != nil {
			err = store.E(store.ErrInvalid, "lease_seconds", "enter a whole number of seconds")
		}
	}
	if err == nil {
		sn, err = s.store.CreateBootSubnet(c.UserContext(), s.actor(c), in)
	}
	if err == nil {
		return s.redirect(c, "/admin/boot-subnets/"+url.PathEscape(sn.ID), "success",
			"Boot subnet "+sn.Name+" added; the DHCP server rereads its networks and answers on "+sn.CIDR+" within a minute.")
	}
	errs, err := formFailure(c, bootSubnetInputError(err), adminBootSubnetFields()...)
	if err != nil {
		return err
	}
	v, err := s.adminBootSubnetsView(c, form, errs)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminBootSubnets(v))
}
