package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// NormalizeEmail validates an address and returns it in lower case.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", E(ErrInvalid, "email", "enter your email address")
	}
	if len(s) > 254 {
		return "", E(ErrInvalid, "email", "the email address is too long")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.LastIndex(s, "@")+1:], ".") {
		return "", E(ErrInvalid, "email", "enter a valid email address, like name@example.com")
	}
	return s, nil
}

func emailFree(tx *gorm.DB, email string) error {
	var n int64
	if err := tx.Model(&User{}).Where("email = ?", email).Count(&n).Error; err != nil {
		return fmt.Errorf("check email: %w", err)
	}
	if n > 0 {
		return E(ErrConflict, "email", "an account with this email already exists")
	}
	return nil
}

// ValidTenantRole reports whether r is a role inside a tenant.
func ValidTenantRole(r string) bool { return r == RoleOwner || r == RoleMember || r == RoleReadOnly }

// ValidStaffRole reports whether r is a staff role.
func ValidStaffRole(r string) bool { return r == RoleAdmin || r == RoleOperator || r == RoleAuditor }

// GetUser returns one user.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		if errIsNotFound(err) {
			return User{}, notFound("user")
		}
		return User{}, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// GetUserByEmail returns the user with this address.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("email = ?", strings.ToLower(strings.TrimSpace(email))).Take(&u).Error
	if err != nil {
		if errIsNotFound(err) {
			return User{}, notFound("user")
		}
		return User{}, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// RecordLogin notes a successful sign-in.
func (s *Store) RecordLogin(ctx context.Context, a Actor) error {
	return s.change(ctx, a, "auth.login", &Target{Type: "user", ID: a.UserID, Name: a.Email}, func(tx *gorm.DB) error {
		return tx.Model(&User{}).Where("id = ?", a.UserID).Update("last_login_at", now()).Error
	})
}

// CountStaff tells how many staff accounts exist.
func (s *Store) CountStaff(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&User{}).Where("tenant_id IS NULL").Count(&n).Error
	return n, err
}

// CreateStaff adds an ISP staff account.
func (s *Store) CreateStaff(ctx context.Context, a Actor, email, passwordHash, role string) (User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if !ValidStaffRole(role) {
		return User{}, E(ErrInvalid, "role", "choose admin, operator or auditor")
	}
	ts := now()
	u := User{ID: newID(), Email: email, PasswordHash: passwordHash, Role: role, CreatedAt: ts, UpdatedAt: ts}
	err = s.change(ctx, a, "staff.create", &Target{Type: "user", ID: u.ID, Name: email}, func(tx *gorm.DB) error {
		if err := emailFree(tx, email); err != nil {
			return err
		}
		return tx.Create(&u).Error
	})
	return u, err
}

// UserSummary is a user with the name of their tenant.
type UserSummary struct {
	User
	TenantName string
}

// ListUsers searches all users by email.
func (s *Store) ListUsers(ctx context.Context, search string, p Page) ([]UserSummary, int, error) {
	q := s.db.WithContext(ctx).Table("users").Joins("LEFT JOIN tenants ON tenants.id = users.tenant_id")
	if search = strings.ToLower(strings.TrimSpace(search)); search != "" {
		q = q.Where(likeClause("users.email"), "%"+likeEscape(search)+"%")
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	var out []UserSummary
	err := p.apply(q.Select("users.*, COALESCE(tenants.name, '') AS tenant_name").Order("users.created_at DESC, users.id")).Scan(&out).Error
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return out, int(total), nil
}

// ListMembers returns a tenant's users, oldest first.
func (s *Store) ListMembers(ctx context.Context, tenantID string) ([]User, error) {
	var out []User
	err := s.db.WithContext(ctx).Where("tenant_id = ?", tenantID).Order("created_at, id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return out, nil
}

// SetMemberRole changes a member's role; a tenant always keeps one owner.
func (s *Store) SetMemberRole(ctx context.Context, a Actor, tenantID, userID, role string) error {
	if !ValidTenantRole(role) {
		return E(ErrInvalid, "role", "choose owner, member or read-only")
	}
	t := &Target{Type: "user", ID: userID, TenantID: tenantID}
	return s.change(ctx, a, "member.role", t, func(tx *gorm.DB) error {
		u, err := lockMember(tx, tenantID, userID)
		if err != nil {
			return err
		}
		t.Name = u.Email
		if u.Role == RoleOwner && role != RoleOwner {
			if err := keepOwner(tx, tenantID); err != nil {
				return err
			}
		}
		return tx.Model(&User{}).Where("id = ?", userID).Updates(map[string]any{"role": role, "updated_at": now()}).Error
	})
}

// RemoveMember deletes a member's account; a tenant always keeps one owner.
func (s *Store) RemoveMember(ctx context.Context, a Actor, tenantID, userID string) error {
	t := &Target{Type: "user", ID: userID, TenantID: tenantID}
	return s.change(ctx, a, "member.remove", t, func(tx *gorm.DB) error {
		u, err := lockMember(tx, tenantID, userID)
		if err != nil {
			return err
		}
		t.Name = u.Email
		if u.Role == RoleOwner {
			if err := keepOwner(tx, tenantID); err != nil {
				return err
			}
		}
		return tx.Where("id = ?", userID).Delete(&User{}).Error
	})
}

func lockMember(tx *gorm.DB, tenantID, userID string) (User, error) {
	if _, err := lockTenant(tx, tenantID); err != nil {
		return User{}, err
	}
	var u User
	if err := tx.Where("id = ? AND tenant_id = ?", userID, tenantID).Take(&u).Error; err != nil {
		if errIsNotFound(err) {
			return User{}, notFound("member")
		}
		return User{}, fmt.Errorf("load member: %w", err)
	}
	return u, nil
}

func keepOwner(tx *gorm.DB, tenantID string) error {
	var owners int64
	if err := tx.Model(&User{}).Where("tenant_id = ? AND role = ?", tenantID, RoleOwner).Count(&owners).Error; err != nil {
		return fmt.Errorf("count owners: %w", err)
	}
	if owners <= 1 {
		return E(ErrInvalidTransition, "role", "an organisation needs at least one owner; make someone else owner first")
	}
	return nil
}

// ChangePassword replaces a user's password hash and ends its sessions.
func (s *Store) ChangePassword(ctx context.Context, a Actor, userID, passwordHash string) error {
	return s.change(ctx, a, "user.password", &Target{Type: "user", ID: userID, Name: a.Email}, func(tx *gorm.DB) error {
		if err := tx.Model(&User{}).Where("id = ?", userID).Updates(map[string]any{"password_hash": passwordHash, "updated_at": now()}).Error; err != nil {
			return err
		}
		// Every session ends with the old password; the caller opens a new one.
		_, err := endSessions(tx.Where("user_id = ?", userID))
		return err
	})
}

// randomToken returns a URL-safe random secret with a readable prefix.
func randomToken(prefix string) string {
	b := make([]byte, 25)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// HashToken is how bearer secrets are stored: they are random and long, so
// a plain SHA-256 is enough and allows lookup by hash.
func HashToken(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// InvitationTTL is how long an invitation link stays valid.
const InvitationTTL = 7 * 24 * time.Hour

// CreateInvitation makes a one-time link for email to join the tenant; the
// returned token is shown once and only its hash is kept.
func (s *Store) CreateInvitation(ctx context.Context, a Actor, tenantID, email, role string) (Invitation, string, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Invitation{}, "", err
	}
	if !ValidTenantRole(role) {
		return Invitation{}, "", E(ErrInvalid, "role", "choose owner, member or read-only")
	}
	raw := randomToken("inv_")
	ts := now()
	inv := Invitation{ID: newID(), TenantID: tenantID, Email: email, Role: role, TokenHash: HashToken(raw),
		InvitedBy: a.UserID, CreatedAt: ts, ExpiresAt: ts.Add(InvitationTTL)}
	err = s.change(ctx, a, "member.invite", &Target{Type: "invitation", ID: inv.ID, Name: email, TenantID: tenantID}, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if err := ensureActive(ten); err != nil {
			return err
		}
		if err := emailFree(tx, email); err != nil {
			return err
		}
		var pending int64
		if err := tx.Model(&Invitation{}).Where("tenant_id = ? AND email = ? AND accepted_at IS NULL AND expires_at > ?", tenantID, email, ts).Count(&pending).Error; err != nil {
			return fmt.Errorf("check invitations: %w", err)
		}
		if pending > 0 {
			return E(ErrConflict, "email", "this address already has a pending invitation; revoke it to send a new one")
		}
		return tx.Create(&inv).Error
	})
	if err != nil {
		return Invitation{}, "", err
	}
	return inv, raw, nil
}

// ListInvitations returns a tenant's pending invitations.
func (s *Store) ListInvitations(ctx context.Context, tenantID string) ([]Invitation, error) {
	var out []Invitation
	err := s.db.WithContext(ctx).Where("tenant_id = ? AND accepted_at IS NULL AND expires_at > ?", tenantID, now()).
		Order("created_at DESC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	return out, nil
}

// DeleteInvitation revokes a pending invitation.
func (s *Store) DeleteInvitation(ctx context.Context, a Actor, tenantID, id string) error {
	t := &Target{Type: "invitation", ID: id, TenantID: tenantID}
	return s.change(ctx, a, "member.invite.revoke", t, func(tx *gorm.DB) error {
		var inv Invitation
		if err := tx.Where("id = ? AND tenant_id = ? AND accepted_at IS NULL", id, tenantID).Take(&inv).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("invitation")
			}
			return err
		}
		t.Name = inv.Email
		return tx.Delete(&inv).Error
	})
}

// GetInvitation finds a pending, unexpired invitation by its token.
func (s *Store) GetInvitation(ctx context.Context, token string) (Invitation, Tenant, error) {
	var inv Invitation
	err := s.db.WithContext(ctx).Where("token_hash = ? AND accepted_at IS NULL AND expires_at > ?", HashToken(token), now()).Take(&inv).Error
	if err != nil {
		if errIsNotFound(err) {
			return Invitation{}, Tenant{}, E(ErrNotFound, "", "this invitation link is not valid any more; ask for a new one")
		}
		return Invitation{}, Tenant{}, fmt.Errorf("load invitation: %w", err)
	}
	ten, err := s.GetTenant(ctx, inv.TenantID)
	return inv, ten, err
}

// AcceptInvitation creates the invited user; the token works once.
func (s *Store) AcceptInvitation(ctx context.Context, a Actor, token, passwordHash string) (User, error) {
	var u User
	t := &Target{Type: "invitation"}
	err := s.change(ctx, a, "member.join", t, func(tx *gorm.DB) error {
		ts := now()
		var inv Invitation
		err := tx.Where("token_hash = ? AND accepted_at IS NULL AND expires_at > ?", HashToken(token), ts).Take(&inv).Error
		if err != nil {
			if errIsNotFound(err) {
				return E(ErrNotFound, "", "this invitation link is not valid any more; ask for a new one")
			}
			return err
		}
		t.ID, t.Name, t.TenantID = inv.ID, inv.Email, inv.TenantID
		res := tx.Model(&Invitation{}).Where("id = ? AND accepted_at IS NULL", inv.ID).Update("accepted_at", ts)
		if res.Error != nil || res.RowsAffected != 1 {
			return E(ErrConflict, "", "this invitation was just used")
		}
		if err := emailFree(tx, inv.Email); err != nil {
			return err
		}
		u = User{ID: newID(), Email: inv.Email, PasswordHash: passwordHash, TenantID: &inv.TenantID, Role: inv.Role, CreatedAt: ts, UpdatedAt: ts}
		return tx.Create(&u).Error
	})
	return u, err
}

// CreateAPIToken issues a bearer token for a user; the secret is returned once.
func (s *Store) CreateAPIToken(ctx context.Context, a Actor, userID, name, scope string) (APIToken, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return APIToken{}, "", E(ErrInvalid, "name", "name the token so you can recognise it later")
	case utf8.RuneCountInString(name) > 64:
		return APIToken{}, "", E(ErrInvalid, "name", "the name must be at most 64 characters")
	case scope != ScopeRead && scope != ScopeWrite:
		return APIToken{}, "", E(ErrInvalid, "scope", "choose read-only or read-write")
	}
	raw := randomToken("fbx_")
	tok := APIToken{ID: newID(), UserID: userID, Name: name, Scope: scope, Prefix: raw[:12], TokenHash: HashToken(raw), CreatedAt: now()}
	err := s.change(ctx, a, "token.create", &Target{Type: "api_token", ID: tok.ID, Name: name}, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&APIToken{}).Where("user_id = ?", userID).Count(&n).Error; err != nil {
			return err
		}
		if n >= 50 {
			return E(ErrQuota, "name", "you have 50 API tokens; revoke unused ones first")
		}
		return tx.Create(&tok).Error
	})
	if err != nil {
		return APIToken{}, "", err
	}
	return tok, raw, nil
}

// ListAPITokens returns a user's tokens.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]APIToken, error) {
	var out []APIToken
	if err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("created_at DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return out, nil
}

// DeleteAPIToken revokes one of a user's tokens.
func (s *Store) DeleteAPIToken(ctx context.Context, a Actor, userID, id string) error {
	t := &Target{Type: "api_token", ID: id}
	return s.change(ctx, a, "token.revoke", t, func(tx *gorm.DB) error {
		var tok APIToken
		if err := tx.Where("id = ? AND user_id = ?", id, userID).Take(&tok).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("api token")
			}
			return err
		}
		t.Name = tok.Name
		return tx.Delete(&tok).Error
	})
}

// AuthenticateToken resolves a bearer token to its user.
func (s *Store) AuthenticateToken(ctx context.Context, raw string) (APIToken, User, error) {
	db := s.db.WithContext(ctx)
	var tok APIToken
	if err := db.Where("token_hash = ?", HashToken(raw)).Take(&tok).Error; err != nil {
		if errIsNotFound(err) {
			return APIToken{}, User{}, notFound("api token")
		}
		return APIToken{}, User{}, fmt.Errorf("load api token: %w", err)
	}
	u, err := s.GetUser(ctx, tok.UserID)
	if err != nil {
		return APIToken{}, User{}, err
	}
	// Note use at most once a minute to keep reads cheap.
	ts := now()
	if tok.LastUsedAt == nil || ts.Sub(*tok.LastUsedAt) > time.Minute {
		if err := db.Model(&APIToken{}).Where("id = ?", tok.ID).Update("last_used_at", ts).Error; err != nil {
			s.log.WarnContext(ctx, "note api token use", "err", err)
		}
	}
	return tok, u, nil
}

// Secret returns the named secret, creating it with gen on first use; every
// process sharing the database gets the same value.
func (s *Store) Secret(ctx context.Context, key string, gen func() string) (string, error) {
	db := s.db.WithContext(ctx)
	err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&setting{Key: key, Value: gen(), CreatedAt: now()}).Error
	if err != nil {
		return "", fmt.Errorf("store secret %s: %w", key, err)
	}
	var st setting
	if err := db.Where("key = ?", key).Take(&st).Error; err != nil {
		return "", fmt.Errorf("load secret %s: %w", key, err)
	}
	return st.Value, nil
}

// Setting names shared between processes.
const (
	SettingProvisionerSSHKey  = "provisioner_ssh_public_key"
	SettingGatewayFingerprint = "ssh_gateway_fingerprint"
)

// SetSetting stores a non-secret value, such as the public key the
// provisioner uses for qemu+ssh hosts, for every process to read.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoUpdates: clause.AssignmentColumns([]string{"value"})}).
		Create(&setting{Key: key, Value: value, CreatedAt: now()}).Error
	if err != nil {
		return fmt.Errorf("store setting %s: %w", key, err)
	}
	return nil
}

// Setting returns a stored value, or "" when there is none.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var st setting
	err := s.db.WithContext(ctx).Where("key = ?", key).Take(&st).Error
	if errIsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load setting %s: %w", key, err)
	}
	return st.Value, nil
}
