package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminAudit reads the whole audit log: ?tenant= is a tenant id, ?actor=
// part of an email, ?action= an action prefix.
func (s *Server) apiAdminAudit(c *fiber.Ctx) error {
	return s.auditList(c, store.AuditFilter{TenantID: c.Query("tenant"), Actor: c.Query("actor"),
		Action: c.Query("action"), Result: c.Query("result")})
}
