package portal

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

func adminBootSubnetPath(id string) string { return "/admin/boot-subnets/" + url.PathEscape(id) }

// adminBootSubnetView loads the boot subnet page: figures, reservations and
// the leases held now, a page of them at a time.
func (s *Server) adminBootSubnetView(c *fiber.Ctx, form views.AdminReservationForm, errs views.FormErrors) (views.AdminBootSubnetView, error) {
	b, err := s.bootSubnetOf(c)
	if err != nil {
		return views.AdminBootSubnetView{}, err
	}
	v := views.AdminBootSubnetView{Page: s.page(c, "Boot subnet "+b.Name, "admin-boot-subnets"), Subnet: adminBootSubnetRow(b),
		Form: form, Errors: errs}
	for _, r := range b.Reservations {
		v.Reservations = append(v.Reservations, views.AdminReservationRow{MAC: r.MAC, IP: r.IP, Hostname: r.Hostname, CreatedAt: r.CreatedAt})
	}
	var current []views.AdminLeaseRow
	for _, l := range b.Leases {
		j := b.toLeaseJSON(l)
		if j.State == leaseExpired {
			continue
		}
		current = append(current, views.AdminLeaseRow{IP: j.IP, MAC: j.MAC, Hostname: j.Hostname, Declined: j.State == leaseDeclined,
			Reserved: j.Reserved, ExpiresAt: j.ExpiresAt})
	}
	p := pageOf(c)
	v.Leases, v.LeasePager = pageOfSlice(current, p), pager(c, p, len(current))
	return v, nil
}

// webAdminBootSubnet shows one boot subnet.
func (s *Server) webAdminBootSubnet(c *fiber.Ctx) error {
	v, err := s.adminBootSubnetView(c, views.AdminReservationForm{}, nil)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminBootSubnet(v))
}

// webAdminBootSubnetDelete removes a boot subnet once staff tick the
// confirmation.
func (s *Server) webAdminBootSubnetDelete(c *fiber.Ctx) error {
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	if c.FormValue("confirm") != "on" {
		return s.redirect(c, adminBootSubnetPath(sn.ID), "error", "Tick the confirmation to delete "+sn.Name+".")
	}
	if err := s.store.DeleteBootSubnet(ctx, s.actor(c), sn.ID); err != nil {
		if he := classify(err); he.status == fiber.StatusNotFound || he.status >= 500 {
			return err
		}
		return s.redirect(c, adminBootSubnetPath(sn.ID), "error", capitalize(classify(err).message)+".")
	}
	return s.redirect(c, "/admin/boot-subnets", "success", "Boot subnet "+sn.Name+" deleted.")
}

// webAdminReservationCreate adds a reservation from the form on the boot
// subnet's page.
func (s *Server) webAdminReservationCreate(c *fiber.Ctx) error {
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	form := views.AdminReservationForm{MAC: strings.TrimSpace(c.FormValue("mac")), IP: strings.TrimSpace(c.FormValue("ip")),
		Hostname: strings.TrimSpace(c.FormValue("hostname"))}
	r, err := s.store.AddReservation(ctx, s.actor(c), form.MAC, sn.ID, form.IP, form.Hostname)
	if err == nil {
		return s.redirect(c, adminBootSubnetPath(sn.ID), "success", r.MAC+" now always gets "+r.IP+".")
	}
	errs, err := formFailure(c, err, "mac", "ip", "hostname")
	if err != nil {
		return err
	}
	v, err := s.adminBootSubnetView(c, form, errs)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminBootSubnet(v))
}

// webAdminReservationDelete removes one of the boot subnet's reservations.
func (s *Server) webAdminReservationDelete(c *fiber.Ctx) error {
	sn, r, err := s.subnetReservation(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteReservation(c.UserContext(), s.actor(c), r.MAC); err != nil {
		return err
	}
	return s.redirect(c, adminBootSubnetPath(sn.ID), "success", "Reservation of "+r.MAC+" removed; its lease runs out on its own.")
}
