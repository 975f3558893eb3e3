package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
)

// SignUp creates a tenant and its first owner in one transaction.
func (s *Store) SignUp(ctx context.Context, a Actor, tenantName, email, passwordHash string) (Tenant, User, error) {
	return s.signUp(ctx, a, tenantName, email, passwordHash, nil)
}

// signUp creates the tenant and its owner; first, when given, runs at the
// start of the same transaction.
func (s *Store) signUp(ctx context.Context, a Actor, tenantName, email, passwordHash string, first func(tx *gorm.DB) error) (Tenant, User, error) {
	name, err := validTenantName(tenantName)
	if err != nil {
		return Tenant{}, User{}, err
	}
	if err := s.refuseReserved(name); err != nil {
		return Tenant{}, User{}, err
	}
	email, err = NormalizeEmail(email)
	if err != nil {
		return Tenant{}, User{}, err
	}
	var ten Tenant
	var u User
	t := &Target{Type: "tenant", Name: name}
	a.Email = email
	err = s.change(ctx, a, "tenant.signup", t, func(tx *gorm.DB) error {
		if first != nil {
			if err := first(tx); err != nil {
				return err
			}
		}
		if err := emailFree(tx, email); err != nil {
			return err
		}
		if err := distinctTenantName(tx, name); err != nil {
			return err
		}
		var d quotaDefaults
		if err := tx.Where("id = 1").Take(&d).Error; err != nil {
			return fmt.Errorf("load default quota: %w", err)
		}
		slug, err := s.freeSlug(tx, name)
		if err != nil {
			return err
		}
		ts := now()
		ten = Tenant{ID: newID(), Name: name, Slug: slug, Status: TenantActive, CreatedAt: ts, UpdatedAt: ts}
		ten.setQuota(d.quota())
		if err := tx.Create(&ten).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "tenant", "an organisation with this name already exists; choose another")
			}
			return fmt.Errorf("create tenant: %w", err)
		}
		u = User{ID: newID(), Email: email, PasswordHash: passwordHash, TenantID: &ten.ID, Role: RoleOwner, CreatedAt: ts, UpdatedAt: ts}
		if err := tx.Create(&u).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "email", "an account with this email already exists")
			}
			return fmt.Errorf("create user: %w", err)
		}
		t.ID, t.TenantID = ten.ID, ten.ID
		a.UserID = u.ID
		return nil
	})
	return ten, u, err
}

func validTenantName(s string) (string, error) {
	s = strings.Join(strings.Fields(s), " ")
	switch {
	case s == "":
		return "", E(ErrInvalid, "tenant", "enter the name of your organisation")
	case utf8.RuneCountInString(s) > 64:
		return "", E(ErrInvalid, "tenant", "the organisation name must be at most 64 characters")
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "", E(ErrInvalid, "tenant", "the organisation name contains characters that cannot be shown")
	case slugify(s) == "":
		return "", E(ErrInvalid, "tenant", "the organisation name needs at least one letter or digit")
	}
	return s, nil
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slugify turns a name into a DNS label of at most 40 characters.
func slugify(name string) string {
	s := nonSlug.ReplaceAllString(strings.ToLower(name), "-")
	s = strings.Trim(s, "-")
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	return s
}

func (s *Store) freeSlug(tx *gorm.DB, name string) (string, error) {
	base := slugify(name)
	for i := 1; i < 1000; i++ {
		slug := base
		if i > 1 {
			slug = fmt.Sprintf("%s-%d", base, i)
		}
		if s.Reserved(slug) {
			continue
		}
		var n int64
		if err := tx.Model(&Tenant{}).Where("slug = ?", slug).Count(&n).Error; err != nil {
			return "", fmt.Errorf("check tenant slug: %w", err)
		}
		if n == 0 {
			return slug, nil
		}
	}
	return "", E(ErrConflict, "tenant", "too many organisations share this name; choose another")
}

// GetTenant returns one tenant.
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&t).Error; err != nil {
		if errIsNotFound(err) {
			return Tenant{}, notFound("tenant")
		}
		return Tenant{}, fmt.Errorf("load tenant: %w", err)
	}
	return t, nil
}

// TenantSummary is a tenant as the staff list shows it.
type TenantSummary struct {
	Tenant
	OwnerEmail string
	VMCount    int64
}

// ListTenants searches tenants by name, slug or member email.
func (s *Store) ListTenants(ctx context.Context, search string, p Page) ([]TenantSummary, int, error) {
	q := s.db.WithContext(ctx).Model(&Tenant{})
	if search = strings.ToLower(strings.TrimSpace(search)); search != "" {
		pat := "%" + likeEscape(search) + "%"
		q = q.Where(likeClause("LOWER(name)")+" OR "+likeClause("slug")+" OR id IN (SELECT tenant_id FROM users WHERE "+likeClause("email")+")", pat, pat, pat)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count tenants: %w", err)
	}
	var out []TenantSummary
	err := p.apply(q.Select("tenants.*, "+
		"COALESCE((SELECT u.email FROM users u WHERE u.tenant_id = tenants.id AND u.role = ? ORDER BY u.created_at LIMIT 1), '') AS owner_email, "+
		"(SELECT COUNT(*) FROM vms v WHERE v.tenant_id = tenants.id AND v.deleted_at IS NULL) AS vm_count", RoleOwner).
		Order("created_at DESC, id")).Scan(&out).Error
	if err != nil {
		return nil, 0, fmt.Errorf("list tenants: %w", err)
	}
	return out, int(total), nil
}

// SuspendTenant blocks a tenant from changing anything and ends its
// sessions; its routes, port forwards, gateway connections and DNS names
// are withdrawn by the forwarders, gateway and DNS servers at their next
// poll. VMs keep running and no data is touched.
func (s *Store) SuspendTenant(ctx context.Context, a Actor, id, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return E(ErrInvalid, "reason", "give a reason; the tenant will see it")
	}
	if utf8.RuneCountInString(reason) > 200 {
		return E(ErrInvalid, "reason", "the reason must be at most 200 characters")
	}
	return s.setTenantStatus(ctx, a, id, TenantSuspended, reason)
}

// UnsuspendTenant lifts a suspension.
func (s *Store) UnsuspendTenant(ctx context.Context, a Actor, id string) error {
	return s.setTenantStatus(ctx, a, id, TenantActive, "")
}

func (s *Store) setTenantStatus(ctx context.Context, a Actor, id, status, reason string) error {
	t := &Target{Type: "tenant", ID: id, TenantID: id}
	action := "tenant.suspend"
	if status == TenantActive {
		action = "tenant.unsuspend"
	}
	return s.change(ctx, a, action, t, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, id)
		if err != nil {
			return err
		}
		t.Name = ten.Name
		if ten.Status == status {
			return E(ErrInvalidTransition, "", "the tenant is already "+status)
		}
		if err := tx.Model(&Tenant{}).Where("id = ?", id).Updates(map[string]any{"status": status, "suspend_reason": reason}).Error; err != nil {
			return err
		}
		// The forwarders drop or restore the tenant's routes, and cut
		// its open connections, at their next poll.
		if err := bumpForwardRoutes(tx); err != nil {
			return err
		}
		if status == TenantSuspended {
			// Members sign in again and see why; a copied cookie or
			// token stops working now.
			return endTenantSessions(tx, id)
		}
		return nil
	})
}

// ensureActive refuses changes for a suspended tenant.
func ensureActive(t Tenant) error {
	if t.Status == TenantSuspended {
		msg := "this account is suspended"
		if t.SuspendReason != "" {
			msg += ": " + t.SuspendReason
		}
		return E(ErrSuspended, "", msg)
	}
	return nil
}
