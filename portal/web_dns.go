package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// dnsRecordTypes are the types the add form offers, in the store's words.
func dnsRecordTypes() []string {
	return []string{store.DNSTypeA, store.DNSTypeAAAA, store.DNSTypeCNAME, store.DNSTypeTXT, store.DNSTypeMX}
}

// dnsView lists one page of the tenant's records with an empty add form.
func (s *Server) dnsView(c *fiber.Ctx) (views.DNSView, error) {
	p := pageOf(c)
	recs, total, err := s.store.ListDNSRecords(c.UserContext(), who(c).User.Tenant(), p)
	if err != nil {
		return views.DNSView{}, err
	}
	slug := who(c).Tenant.Slug
	v := views.DNSView{
		Page: s.page(c, "DNS", "dns"), Pager: pager(c, p, total), Subzone: s.subzone(slug),
		Types: dnsRecordTypes(), Limit: store.MaxDNSRecordsPerTenant,
		DefaultTTL: store.DefaultDNSTTL, MinTTL: store.MinDNSTTL, MaxTTL: store.MaxDNSTTL,
		Form: views.DNSRecordForm{Type: store.DNSTypeA},
	}
	for _, r := range recs {
		v.Records = append(v.Records, views.DNSRecordRow{ID: r.ID, Name: r.Name, FQDN: s.dnsRecordFQDN(r.Name, slug),
			Type: r.Type, Value: r.Value, TTL: r.TTL, Priority: r.Priority, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy})
	}
	return v, nil
}

func (s *Server) webDNS(c *fiber.Ctx) error {
	v, err := s.dnsView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.DNS(v))
}

// webDNSRecordCreate adds a record; refusals re-render the page with the
// form as typed.
func (s *Server) webDNSRecordCreate(c *fiber.Ctx) error {
	form := views.DNSRecordForm{Name: c.FormValue("name"), Type: c.FormValue("type"), Value: c.FormValue("value"),
		TTL: c.FormValue("ttl"), Priority: c.FormValue("priority")}
	ttl, err := formInt(c, "ttl", "the TTL")
	var prio int
	if err == nil {
		prio, err = formInt(c, "priority", "the priority")
	}
	var r store.DNSRecord
	if err == nil {
		r, err = s.store.CreateDNSRecord(c.UserContext(), s.actor(c), who(c).User.Tenant(), store.DNSRecordInput{
			Name: form.Name, Type: form.Type, Value: form.Value, TTL: ttl, Priority: prio,
		})
	}
	if err == nil {
		return s.redirect(c, "/dns", "success",
			"Added "+r.Type+" record for "+s.dnsRecordFQDN(r.Name, who(c).Tenant.Slug)+".")
	}
	errs, err := formFailure(c, err, "name", "type", "value", "ttl", "priority")
	if err != nil {
		return err
	}
	v, err := s.dnsView(c)
	if err != nil {
		return err
	}
	if form.Type == "" {
		form.Type = store.DNSTypeA
	}
	form.Type = strings.ToUpper(strings.TrimSpace(form.Type))
	v.Form, v.Errors = form, errs
	return s.render(c, views.DNS(v))
}

// webDNSRecordDelete removes a record; another tenant's id is not found.
func (s *Server) webDNSRecordDelete(c *fiber.Ctx) error {
	if err := s.store.DeleteDNSRecord(c.UserContext(), s.actor(c), who(c).User.Tenant(), c.Params("id")); err != nil {
		return s.refuse(c, "/dns", "Could not delete the record", err)
	}
	return s.redirect(c, "/dns", "success", "DNS record deleted.")
}
