package store

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/sshkey"
)

// AddSSHKey validates a pasted or uploaded public key and adds it to the
// tenant's keys, within the tenant's key quota. An empty name falls back to
// the key's comment.
func (s *Store) AddSSHKey(ctx context.Context, a Actor, tenantID, name, input string) (SSHKey, error) {
	var key SSHKey
	t := &Target{Type: "ssh_key", Name: strings.TrimSpace(name), TenantID: tenantID}
	err := s.change(ctx, a, "ssh_key.add", t, func(tx *gorm.DB) error {
		k, err := sshkey.Parse(input)
		if err != nil {
			return E(ErrInvalid, "public_key", err.Error())
		}
		name = strings.TrimSpace(name)
		if name == "" {
			name = k.Comment
		}
		if err := validKeyName(name); err != nil {
			return err
		}
		key = SSHKey{ID: newID(), TenantID: tenantID, Name: name, Type: k.Type, Bits: k.Bits, Fingerprint: k.Fingerprint,
			PublicKey: k.Authorized, Comment: k.Comment, CreatedBy: a.Email, CreatedAt: now()}
		t.ID, t.Name = key.ID, name
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if err := ensureActive(ten); err != nil {
			return err
		}
		var dup SSHKey
		err = tx.Where("tenant_id = ? AND fingerprint = ?", tenantID, k.Fingerprint).Take(&dup).Error
		if err == nil {
			return E(ErrConflict, "public_key", fmt.Sprintf("this key is already in your account as %q", dup.Name))
		}
		if !errIsNotFound(err) {
			return fmt.Errorf("check duplicate key: %w", err)
		}
		var n int64
		if err := tx.Model(&SSHKey{}).Where("tenant_id = ?", tenantID).Count(&n).Error; err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		if n >= ten.QuotaSSHKeys {
			return E(ErrQuota, "public_key", fmt.Sprintf("your quota allows %d SSH keys and all are in use; delete one first", ten.QuotaSSHKeys))
		}
		if err := tx.Create(&key).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "public_key", "this key is already in your account")
			}
			return fmt.Errorf("create key: %w", err)
		}
		return nil
	})
	return key, err
}

func validKeyName(name string) error {
	switch {
	case name == "":
		return E(ErrInvalid, "name", "name the key, for example \"laptop\"")
	case utf8.RuneCountInString(name) > 64:
		return E(ErrInvalid, "name", "the name must be at most 64 characters")
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return E(ErrInvalid, "name", "the name contains characters that cannot be shown")
	}
	return nil
}

// ListSSHKeys returns a tenant's keys, newest first.
func (s *Store) ListSSHKeys(ctx context.Context, tenantID string, p Page) ([]SSHKey, int, error) {
	q := s.db.WithContext(ctx).Model(&SSHKey{}).Where("tenant_id = ?", tenantID)
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count keys: %w", err)
	}
	var out []SSHKey
	if err := p.apply(q.Order("created_at DESC, id")).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list keys: %w", err)
	}
	return out, int(total), nil
}

// GetSSHKey returns one of a tenant's keys; another tenant's id is not found.
func (s *Store) GetSSHKey(ctx context.Context, tenantID, id string) (SSHKey, error) {
	var k SSHKey
	if err := s.db.WithContext(ctx).Where("id = ? AND tenant_id = ?", id, tenantID).Take(&k).Error; err != nil {
		if errIsNotFound(err) {
			return SSHKey{}, notFound("ssh key")
		}
		return SSHKey{}, fmt.Errorf("load key: %w", err)
	}
	return k, nil
}

// DeleteSSHKey removes a key from the tenant. VMs that were given it keep it
// until they are rebuilt.
func (s *Store) DeleteSSHKey(ctx context.Context, a Actor, tenantID, id string) error {
	t := &Target{Type: "ssh_key", ID: id, TenantID: tenantID}
	return s.change(ctx, a, "ssh_key.delete", t, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if err := ensureActive(ten); err != nil {
			return err
		}
		var k SSHKey
		if err := tx.Where("id = ? AND tenant_id = ?", id, tenantID).Take(&k).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("ssh key")
			}
			return err
		}
		t.Name = k.Name
		return tx.Delete(&k).Error
	})
}
