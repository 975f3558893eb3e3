package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Actor is who asks for a change, and from where.
type Actor struct {
	UserID   string
	Email    string
	TenantID string // the actor's tenant; "" for staff and anonymous
	IP       string
}

// Target is what a change is about.
type Target struct {
	Type     string
	ID       string
	Name     string
	TenantID string // the tenant the target belongs to, when known
}

// Audit results.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// change runs fn in one transaction and records the audit entry: in the same
// transaction when it succeeds, on its own when it fails. fn may fill in the
// target (for example the id of what it created).
func (s *Store) change(ctx context.Context, a Actor, action string, t *Target, fn func(tx *gorm.DB) error) error {
	return s.changeDetail(ctx, a, action, t, func(tx *gorm.DB) (string, error) { return "", fn(tx) })
}

// changeDetail is change for changes whose successful entry says what
// changed (a VM's plan before and after, say): fn returns that detail.
func (s *Store) changeDetail(ctx context.Context, a Actor, action string, t *Target, fn func(tx *gorm.DB) (string, error)) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		detail, err := fn(tx)
		if err != nil {
			return err
		}
		return tx.Create(auditEntry(a, action, t, ResultSuccess, detail)).Error
	})
	if err == nil || Unavailable(err) {
		return err // with the database away, a failure entry cannot be written either
	}
	detail := "internal error"
	if e, ok := AsError(err); ok {
		detail = e.Message
	}
	if aerr := s.db.WithContext(ctx).Create(auditEntry(a, action, t, ResultFailure, detail)).Error; aerr != nil {
		s.log.ErrorContext(ctx, "record audit entry", "action", action, "err", aerr)
	}
	return err
}

func auditEntry(a Actor, action string, t *Target, result, detail string) *AuditEntry {
	e := &AuditEntry{
		ID: newID(), At: now(), ActorID: a.UserID, ActorEmail: a.Email, TenantID: a.TenantID,
		Action: action, SourceIP: a.IP, Result: result, Detail: clean(detail),
	}
	if t != nil {
		e.TargetType, e.TargetID, e.TargetName = t.Type, clean(t.ID), clean(t.Name)
		if t.TenantID != "" {
			e.TenantID = t.TenantID
		}
	}
	return e
}

// clean keeps what callers typed storable and short: PostgreSQL refuses NUL
// bytes and invalid UTF-8 in text columns.
func clean(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "?")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// maxLogDetail bounds the log text kept with an event.
const maxLogDetail = 16 << 10

// cleanLog keeps multi-line text (an agent's log tail) valid, without NULs
// and within maxLogDetail bytes, dropping the oldest lines first.
func cleanLog(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "?")
	for len(s) > maxLogDetail {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return strings.ToValidUTF8(s[len(s)-maxLogDetail:], "")
		}
		s = s[i+1:]
	}
	return s
}

// RecordAudit writes an entry for something decided outside the store,
// such as a refused sign-in.
func (s *Store) RecordAudit(ctx context.Context, a Actor, action string, t *Target, result, detail string) error {
	if err := s.db.WithContext(ctx).Create(auditEntry(a, action, t, result, detail)).Error; err != nil {
		return fmt.Errorf("record audit entry: %w", err)
	}
	return nil
}

// AuditFilter narrows the audit log.
type AuditFilter struct {
	TenantID string // exact
	Actor    string // substring of the actor's email
	Action   string // prefix, e.g. "vm." or "vm.create"
	Result   string // success | failure | ""
	Since    time.Time
}

// ListAudit returns the newest entries first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter, p Page) ([]AuditEntry, int, error) {
	q := s.db.WithContext(ctx).Model(&AuditEntry{})
	if f.TenantID != "" {
		q = q.Where("tenant_id = ?", f.TenantID)
	}
	if f.Actor != "" {
		q = q.Where(likeClause("LOWER(actor_email)"), "%"+likeEscape(strings.ToLower(f.Actor))+"%")
	}
	if f.Action != "" {
		q = q.Where(likeClause("action"), likeEscape(f.Action)+"%")
	}
	if f.Result != "" {
		q = q.Where("result = ?", f.Result)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UTC())
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count audit entries: %w", err)
	}
	var out []AuditEntry
	if err := p.apply(q.Order("at DESC, id DESC")).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list audit entries: %w", err)
	}
	return out, int(total), nil
}

// likeEscape makes user input match literally in a LIKE pattern used with
// likeClause's ESCAPE.
func likeEscape(s string) string {
	return strings.NewReplacer("\\", "\\\\", "%", "\\%", "_", "\\_").Replace(s)
}

// likeClause is a LIKE comparison whose escape character is the backslash on
// both dialects.
func likeClause(column string) string { return column + " LIKE ? ESCAPE '\\'" }
