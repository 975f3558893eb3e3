package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) webAudit(c *fiber.Ctx) error {
	p := pageOf(c)
	entries, total, err := s.store.ListAudit(c.UserContext(), store.AuditFilter{TenantID: who(c).User.Tenant()}, p)
	if err != nil {
		return err
	}
	v := views.AuditView{Page: s.page(c, "Activity", "audit"), Pager: pager(c, p, total)}
	for _, e := range entries {
		v.Entries = append(v.Entries, views.AuditRow{Time: e.At, Actor: auditActor(e), Action: e.Action,
			Target: auditTarget(e), SourceIP: e.SourceIP, Result: e.Result, Detail: e.Detail})
	}
	return s.render(c, views.Audit(v))
}

func auditActor(e store.AuditEntry) string {
	if e.ActorEmail == "" {
		return "system"
	}
	return e.ActorEmail
}

// auditTarget is "vm web-1": the kind of thing and its name (or id).
func auditTarget(e store.AuditEntry) string {
	name := e.TargetName
	if name == "" {
		name = e.TargetID
	}
	return strings.TrimSpace(strings.ReplaceAll(e.TargetType, "_", " ") + " " + name)
}
