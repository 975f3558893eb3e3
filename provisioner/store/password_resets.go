package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

const (
	// PasswordResetTTL is how long a reset link works.
	PasswordResetTTL = time.Hour
	// passwordResetRequestTTL is how long a request waits for staff.
	passwordResetRequestTTL = 7 * 24 * time.Hour
)

// PasswordReset is a reset link (TokenHash set) or a request waiting for
// staff to make one (TokenHash nil).
type PasswordReset struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	TokenHash *string
	SourceIP  string
	CreatedBy string // staff who made the link; "" when asked for by the user
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// PasswordResetRequest is a request waiting for staff, with its user.
type PasswordResetRequest struct {
	UserID     string
	Email      string
	TenantName string
	SourceIP   string
	CreatedAt  time.Time
}

// errBadResetLink is the one answer to a link that is unknown, used or
// expired, so that none can be told from another.
func errBadResetLink() error {
	return E(ErrNotFound, "token", "this reset link is not valid: it was used already, has expired or was replaced by a newer one; ask for a new one")
}

// RequestPasswordReset records that someone asked to reset the password of
// the account with email. With link, it returns a link's token to send by
// email; without, the request waits for staff (one per user at a time).
// An email with no account gives ErrNotFound, which callers must not show.
func (s *Store) RequestPasswordReset(ctx context.Context, a Actor, email string, link bool) (token string, u User, err error) {
	u, err = s.GetUserByEmail(ctx, email)
	if err != nil {
		return "", User{}, err
	}
	a.UserID, a.Email, a.TenantID = u.ID, u.Email, u.Tenant()
	err = s.change(ctx, a, "user.password_reset_requested", &Target{Type: "user", ID: u.ID, Name: u.Email, TenantID: u.Tenant()}, func(tx *gorm.DB) error {
		t := s.now()
		r := PasswordReset{ID: newID(), UserID: u.ID, SourceIP: a.IP, CreatedAt: t}
		if link {
			token = randomToken("pwr_")
			h := HashToken(token)
			r.TokenHash, r.ExpiresAt = &h, t.Add(PasswordResetTTL)
			if err := supersedeResets(tx, u.ID, t); err != nil {
				return err
			}
			return tx.Create(&r).Error
		}
		var waiting int64
		if err := tx.Model(&PasswordReset{}).Where("user_id = ? AND token_hash IS NULL AND used_at IS NULL AND expires_at > ?", u.ID, t).
			Count(&waiting).Error; err != nil {
			return err
		}
		if waiting > 0 {
			return nil
		}
		r.ExpiresAt = t.Add(passwordResetRequestTTL)
		return tx.Create(&r).Error
	})
	return token, u, err
}

// PasswordResetLink is a link just made: Token is shown once.
type PasswordResetLink struct {
	Token     string
	UserID    string
	Email     string
	ExpiresAt time.Time
}

// CreatePasswordResetLink makes a reset link for userID on behalf of staff
// a, replacing the user's earlier links and answering their requests. Only
// admins may make one for a staff account.
func (s *Store) CreatePasswordResetLink(ctx context.Context, a Actor, userID string) (PasswordResetLink, error) {
	var token string
	var expires time.Time
	t := &Target{Type: "user", ID: userID}
	err := s.change(ctx, a, "staff.password_reset_link", t, func(tx *gorm.DB) error {
		var staff, u User
		if err := tx.Where("id = ?", a.UserID).Take(&staff).Error; err != nil || !staff.IsStaff() {
			return E(ErrForbidden, "", "only staff can make reset links")
		}
		if err := tx.Where("id = ?", userID).Take(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("user")
			}
			return fmt.Errorf("load user: %w", err)
		}
		t.Name, t.TenantID = u.Email, u.Tenant()
		if u.IsStaff() && staff.Role != RoleAdmin {
			return E(ErrForbidden, "", "only admins can make a reset link for a staff account")
		}
		at := s.now()
		if err := supersedeResets(tx, u.ID, at); err != nil {
			return err
		}
		token = randomToken("pwr_")
		h := HashToken(token)
		expires = at.Add(PasswordResetTTL)
		return tx.Create(&PasswordReset{ID: newID(), UserID: u.ID, TokenHash: &h, SourceIP: a.IP, CreatedBy: a.Email,
			CreatedAt: at, ExpiresAt: expires}).Error
	})
	if err != nil {
		return PasswordResetLink{}, err
	}
	return PasswordResetLink{Token: token, UserID: userID, Email: t.Name, ExpiresAt: expires}, nil
}

// supersedeResets closes the user's open links and requests.
func supersedeResets(tx *gorm.DB, userID string, at time.Time) error {
	return tx.Model(&PasswordReset{}).Where("user_id = ? AND used_at IS NULL", userID).Update("used_at", at).Error
}

// PasswordResetRequests lists the requests waiting for staff, oldest first.
func (s *Store) PasswordResetRequests(ctx context.Context, p Page) ([]PasswordResetRequest, int, error) {
	q := s.db.WithContext(ctx).Table("password_resets").
		Joins("JOIN users ON users.id = password_resets.user_id").
		Joins("LEFT JOIN tenants ON tenants.id = users.tenant_id").
		Where("password_resets.token_hash IS NULL AND password_resets.used_at IS NULL AND password_resets.expires_at > ?", s.now())
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count password reset requests: %w", err)
	}
	var out []PasswordResetRequest
	err := p.apply(q.Select("users.id AS user_id, users.email, COALESCE(tenants.name, '') AS tenant_name, password_resets.source_ip, password_resets.created_at").
		Order("password_resets.created_at, password_resets.id")).Scan(&out).Error
	if err != nil {
		return nil, 0, fmt.Errorf("list password reset requests: %w", err)
	}
	return out, int(total), nil
}

// PasswordResetUser returns the user a working reset link is for.
func (s *Store) PasswordResetUser(ctx context.Context, token string) (User, error) {
	var r PasswordReset
	err := s.db.WithContext(ctx).Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", HashToken(token), s.now()).Take(&r).Error
	if errIsNotFound(err) {
		return User{}, errBadResetLink()
	}
	if err != nil {
		return User{}, fmt.Errorf("load password reset: %w", err)
	}
	return s.GetUser(ctx, r.UserID)
}

// ResetPassword spends the link's token (once, however many try at the
// same time), sets the new password and ends every session of the user.
// A second factor stays in force: the next sign-in still asks for it.
func (s *Store) ResetPassword(ctx context.Context, a Actor, token, passwordHash string) (User, error) {
	var u User
	t := &Target{Type: "user"}
	err := s.change(ctx, a, "user.password_reset", t, func(tx *gorm.DB) error {
		at := s.now()
		var r PasswordReset
		if err := tx.Where("token_hash = ?", HashToken(token)).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return errBadResetLink()
			}
			return err
		}
		t.ID = r.UserID
		res := tx.Model(&PasswordReset{}).Where("id = ? AND used_at IS NULL AND expires_at > ?", r.ID, at).Update("used_at", at)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return errBadResetLink()
		}
		if err := tx.Where("id = ?", r.UserID).Take(&u).Error; err != nil {
			return err
		}
		t.Name, t.TenantID = u.Email, u.Tenant()
		if err := tx.Model(&User{}).Where("id = ?", u.ID).Updates(map[string]any{"password_hash": passwordHash, "updated_at": at}).Error; err != nil {
			return err
		}
		u.PasswordHash = passwordHash
		if err := supersedeResets(tx, u.ID, at); err != nil {
			return err
		}
		_, err := endSessions(tx.Where("user_id = ?", u.ID))
		return err
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}
