package portal

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// webAdminAudit shows the whole audit log, filtered by tenant, actor email,
// action prefix and result.
func (s *Server) webAdminAudit(c *fiber.Ctx) error {
	ctx := c.UserContext()
	v := views.AdminAuditView{Page: s.page(c, "Audit log", "admin-audit"), Tenant: strings.TrimSpace(c.Query("tenant")),
		Actor: strings.TrimSpace(c.Query("actor")), Action: strings.TrimSpace(c.Query("action")), Result: c.Query("result")}
	f := store.AuditFilter{Actor: v.Actor, Action: v.Action}
	switch v.Result {
	case store.ResultSuccess, store.ResultFailure:
		f.Result = v.Result
	default:
		v.Result = ""
	}
	if v.Tenant != "" {
		id, err := s.adminAuditTenant(c, v.Tenant)
		if err != nil {
			return err
		}
		f.TenantID = id
	}
	p := pageOf(c)
	entries, total, err := s.store.ListAudit(ctx, f, p)
	if err != nil {
		return err
	}
	v.Pager = pager(c, p, total, "tenant", "actor", "action", "result")
	// Resolve each tenant once per page; a deleted tenant shows its id.
	names := map[string]string{}
	v.Entries = make([]views.AdminAuditRow, len(entries))
	for i, e := range entries {
		name, ok := names[e.TenantID]
		if !ok && e.TenantID != "" {
			t, err := s.store.GetTenant(ctx, e.TenantID)
			switch {
			case err == nil:
				name = t.Name
			case errors.Is(err, store.ErrNotFound):
				name = e.TenantID
			default:
				return err
			}
			names[e.TenantID] = name
		}
		actor := e.ActorEmail
		if actor == "" {
			actor = e.ActorID
		}
		v.Entries[i] = views.AdminAuditRow{Time: e.At, Actor: actor, Tenant: name, Action: e.Action,
			Target: adminAuditTarget(e), SourceIP: e.SourceIP, Result: e.Result, Detail: e.Detail}
	}
	return s.render(c, views.AdminAudit(v))
}

// adminAuditTenant turns the tenant filter into a tenant id: an id as is, or
// the name of exactly one tenant. Anything else matches nothing.
func (s *Server) adminAuditTenant(c *fiber.Ctx, filter string) (string, error) {
	ctx := c.UserContext()
	t, err := s.store.GetTenant(ctx, filter)
	if err == nil {
		return t.ID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	ts, _, err := s.store.ListTenants(ctx, filter, store.Page{Number: 1, PerPage: store.MaxPerPage})
	if err != nil {
		return "", err
	}
	id := ""
	for _, t := range ts {
		if strings.EqualFold(t.Name, filter) {
			if id != "" {
				return filter, nil // ambiguous: several tenants share this name
			}
			id = t.ID
		}
	}
	if id == "" {
		return filter, nil
	}
	return id, nil
}

// adminAuditTarget describes what an entry is about, e.g. "vm 42 (web-1)".
func adminAuditTarget(e store.AuditEntry) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{e.TargetType, e.TargetID} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if e.TargetName != "" && e.TargetName != e.TargetID {
		parts = append(parts, "("+e.TargetName+")")
	}
	return strings.Join(parts, " ")
}
