package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiDNSRecordList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	recs, total, err := s.store.ListDNSRecords(c.UserContext(), who(c).User.Tenant(), p)
	if err != nil {
		return err
	}
	slug := who(c).Tenant.Slug
	out := make([]dnsRecordJSON, len(recs))
	for i, r := range recs {
		out[i] = s.toDNSRecordJSON(r, slug)
	}
	return c.JSON(newList(out, p, total))
}
