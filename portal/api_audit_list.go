package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func (s *Server) apiAudit(c *fiber.Ctx) error {
	return s.auditList(c, store.AuditFilter{TenantID: who(c).User.Tenant(), Action: c.Query("action"), Result: c.Query("result")})
}

// auditList answers a page of the audit log under filter f.
func (s *Server) auditList(c *fiber.Ctx, f store.AuditFilter) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	if f.Result != "" && f.Result != store.ResultSuccess && f.Result != store.ResultFailure {
		return errBadQuery("result", "result must be success or failure")
	}
	entries, total, err := s.store.ListAudit(c.UserContext(), f, p)
	if err != nil {
		return err
	}
	items := make([]auditJSON, len(entries))
	for i, e := range entries {
		items[i] = toAuditJSON(e)
	}
	return c.JSON(newList(items, p, total))
}
