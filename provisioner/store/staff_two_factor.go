package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SettingStaffTwoFactor holds "on" while every staff account must sign in
// with a second factor.
const SettingStaffTwoFactor = "staff_two_factor_required"

// StaffTwoFactorRequired says whether staff accounts must use two-factor
// sign-in to reach the admin panel and the admin API.
func (s *Store) StaffTwoFactorRequired(ctx context.Context) (bool, error) {
	v, err := s.Setting(ctx, SettingStaffTwoFactor)
	return v == "on", err
}

// SetStaffTwoFactorRequired turns the requirement on or off. Turning it on
// is refused while the admin's own account signs in without a second
// factor: the admin would lock themselves out of the panel.
func (s *Store) SetStaffTwoFactorRequired(ctx context.Context, a Actor, on bool) error {
	action, value := "staff.two_factor_optional", "off"
	if on {
		action, value = "staff.two_factor_required", "on"
	}
	return s.change(ctx, a, action, &Target{Type: "setting", Name: SettingStaffTwoFactor}, func(tx *gorm.DB) error {
		var u User
		err := tx.Where("id = ?", a.UserID).Take(&u).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && !u.IsStaff()) {
			return E(ErrForbidden, "", "only staff can change this")
		}
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		if on && !u.TwoFactor() {
			return E(ErrInvalid, "required", "turn on two-factor sign-in for your own account first, or you would lock yourself out of the admin panel")
		}
		return tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "key"}}, DoUpdates: clause.AssignmentColumns([]string{"value"})}).
			Create(&setting{Key: SettingStaffTwoFactor, Value: value, CreatedAt: now()}).Error
	})
}

// staffMustKeepTwoFactor refuses to turn off the second factor of a staff
// account while staff are required to have one.
func staffMustKeepTwoFactor(tx *gorm.DB, userID string) error {
	var u User
	if err := tx.Where("id = ?", userID).Take(&u).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("user")
		}
		return fmt.Errorf("load user: %w", err)
	}
	if !u.IsStaff() {
		return nil
	}
	var st setting
	err := tx.Where("key = ?", SettingStaffTwoFactor).Take(&st).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("load setting: %w", err)
	}
	if st.Value == "on" {
		return E(ErrForbidden, "", "staff accounts must keep two-factor sign-in; an admin can lift the requirement under Users")
	}
	return nil
}
