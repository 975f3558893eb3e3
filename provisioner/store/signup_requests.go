package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// SignupRequestTTL is how long the link that finishes a sign-up stays valid.
const SignupRequestTTL = 24 * time.Hour

// SignupRequest is a sign-up waiting for its email to be confirmed.
type SignupRequest struct {
	ID           string
	TokenHash    string
	Email        string
	TenantName   string
	PasswordHash string
	SourceIP     string `gorm:"column:source_ip"`
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// TableName keeps the table name plain.
func (SignupRequest) TableName() string { return "signup_requests" }

// RequestSignUp checks a sign-up as SignUp would and, instead of creating
// anything, keeps it until the owner of the email follows the link with the
// returned token. When the email already has an account nothing is kept and
// exists is true: the caller answers exactly as for a new address and tells
// the account's owner out of band. Errors never depend on whether the email
// is known.
func (s *Store) RequestSignUp(ctx context.Context, a Actor, tenantName, email, passwordHash string) (token string, exists bool, err error) {
	name, err := validTenantName(tenantName)
	if err != nil {
		return "", false, err
	}
	if err := s.refuseReserved(name); err != nil {
		return "", false, err
	}
	email, err = NormalizeEmail(email)
	if err != nil {
		return "", false, err
	}
	ts := now()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("expires_at < ?", ts).Delete(&SignupRequest{}).Error; err != nil {
			return fmt.Errorf("drop expired sign-ups: %w", err)
		}
		if err := distinctTenantName(tx, name); err != nil {
			return err
		}
		if err := emailFree(tx, email); err != nil {
			if errors.Is(err, ErrConflict) {
				exists = true
				return nil
			}
			return err
		}
		token = randomToken("fsu_")
		req := SignupRequest{ID: newID(), TokenHash: HashToken(token), Email: email, TenantName: name,
			PasswordHash: passwordHash, SourceIP: a.IP, CreatedAt: ts, ExpiresAt: ts.Add(SignupRequestTTL)}
		if err := tx.Create(&req).Error; err != nil {
			return fmt.Errorf("keep sign-up: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", false, err
	}
	if exists {
		token = ""
	}
	return token, exists, nil
}

// PendingSignUp is the sign-up a confirmation link stands for, or
// ErrNotFound when the link expired or was used.
func (s *Store) PendingSignUp(ctx context.Context, token string) (SignupRequest, error) {
	var req SignupRequest
	err := s.db.WithContext(ctx).Where("token_hash = ? AND expires_at > ?", HashToken(token), now()).Take(&req).Error
	if errIsNotFound(err) {
		return SignupRequest{}, signupLinkGone()
	}
	if err != nil {
		return SignupRequest{}, fmt.Errorf("load sign-up: %w", err)
	}
	return req, nil
}

func signupLinkGone() error {
	return E(ErrNotFound, "", "this link has expired or was already used; sign up again")
}

// ConfirmSignUp creates the tenant and owner of the sign-up the token
// stands for, once: the request, and every other pending one for the same
// email, go in the same transaction.
func (s *Store) ConfirmSignUp(ctx context.Context, a Actor, token string) (Tenant, User, error) {
	req, err := s.PendingSignUp(ctx, token)
	if err != nil {
		return Tenant{}, User{}, err
	}
	return s.signUp(ctx, a, req.TenantName, req.Email, req.PasswordHash, func(tx *gorm.DB) error {
		res := tx.Where("id = ? AND expires_at > ?", req.ID, now()).Delete(&SignupRequest{})
		if res.Error != nil {
			return fmt.Errorf("use sign-up: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return signupLinkGone()
		}
		return tx.Where("email = ?", req.Email).Delete(&SignupRequest{}).Error
	})
}
