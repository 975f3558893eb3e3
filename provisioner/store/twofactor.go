package store

import (
	"context"

	"gorm.io/gorm"
)

// BeginTwoFactor keeps sealedSecret as the user's authenticator secret in
// waiting: it is in force only once EnableTwoFactor confirms a code from it.
// Starting again replaces a secret in waiting; a user who already signs in
// with a second factor must turn it off first.
func (s *Store) BeginTwoFactor(ctx context.Context, userID, sealedSecret string) error {
	res := s.db.WithContext(ctx).Model(&User{}).Where("id = ? AND totp_enabled_at IS NULL", userID).
		Updates(map[string]any{"totp_secret": sealedSecret, "updated_at": now()})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		if _, err := s.GetUser(ctx, userID); err != nil {
			return err
		}
		return E(ErrConflict, "", "two-factor sign-in is already on; turn it off first to use another authenticator")
	}
	return nil
}

// EnableTwoFactor puts the secret in waiting in force, step being the time
// step of the code that confirmed it, and replaces the user's recovery codes
// with codeHashes.
func (s *Store) EnableTwoFactor(ctx context.Context, a Actor, userID string, step int64, codeHashes []string) error {
	return s.change(ctx, a, "user.two_factor_on", &Target{Type: "user", ID: userID, Name: a.Email}, func(tx *gorm.DB) error {
		ts := now()
		res := tx.Model(&User{}).Where("id = ? AND totp_enabled_at IS NULL AND totp_secret <> ''", userID).
			Updates(map[string]any{"totp_enabled_at": ts, "totp_last_step": step, "updated_at": ts})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return E(ErrConflict, "", "there is no authenticator waiting to be confirmed; start again")
		}
		return replaceRecoveryCodes(tx, userID, codeHashes)
	})
}

// ReplaceRecoveryCodes gives a user with two-factor sign-in new recovery
// codes; the old ones stop working.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, a Actor, userID string, codeHashes []string) error {
	return s.change(ctx, a, "user.recovery_codes", &Target{Type: "user", ID: userID, Name: a.Email}, func(tx *gorm.DB) error {
		var u User
		if err := tx.Select("id", "totp_enabled_at").Where("id = ?", userID).Take(&u).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("user")
			}
			return err
		}
		if !u.TwoFactor() {
			return E(ErrConflict, "", "two-factor sign-in is off")
		}
		return replaceRecoveryCodes(tx, userID, codeHashes)
	})
}

func replaceRecoveryCodes(tx *gorm.DB, userID string, codeHashes []string) error {
	if err := tx.Where("user_id = ?", userID).Delete(&RecoveryCode{}).Error; err != nil {
		return err
	}
	if len(codeHashes) == 0 {
		return nil
	}
	ts := now()
	codes := make([]RecoveryCode, len(codeHashes))
	for i, h := range codeHashes {
		codes[i] = RecoveryCode{ID: newID(), UserID: userID, CodeHash: h, CreatedAt: ts}
	}
	return tx.Create(&codes).Error
}

// DisableTwoFactor turns two-factor sign-in off and drops the user's secret
// and recovery codes.
func (s *Store) DisableTwoFactor(ctx context.Context, a Actor, userID string) error {
	return s.change(ctx, a, "user.two_factor_off", &Target{Type: "user", ID: userID, Name: a.Email}, func(tx *gorm.DB) error {
		if err := staffMustKeepTwoFactor(tx, userID); err != nil {
			return err
		}
		res := tx.Model(&User{}).Where("id = ?", userID).
			Updates(map[string]any{"totp_secret": "", "totp_enabled_at": nil, "totp_last_step": 0, "updated_at": now()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return notFound("user")
		}
		return tx.Where("user_id = ?", userID).Delete(&RecoveryCode{}).Error
	})
}

// UseTwoFactorStep spends the code of time step step: it is accepted only
// when no code of that step or a later one has been, so a code seen once
// cannot be replayed, even by two requests at once.
func (s *Store) UseTwoFactorStep(ctx context.Context, userID string, step int64) (bool, error) {
	res := s.db.WithContext(ctx).Model(&User{}).
		Where("id = ? AND totp_enabled_at IS NOT NULL AND totp_last_step < ?", userID, step).
		Update("totp_last_step", step)
	return res.RowsAffected == 1, res.Error
}

// UseRecoveryCode spends the recovery code with hash codeHash; false when
// the user has no such unused code.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, codeHash string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&RecoveryCode{}).
		Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID, codeHash).
		Update("used_at", now())
	return res.RowsAffected == 1, res.Error
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&RecoveryCode{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&n).Error
	return int(n), err
}
