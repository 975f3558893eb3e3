package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// builtinReserved are the labels directly under the region zone that the
// product publishes or may publish for itself; no tenant may take them as
// its slug, or its records would answer for the region's own services.
var builtinReserved = []string{
	"ns", "ns0", "ns1", "ns2", "ns3", "ns4", "ns5", "ns6", "ns7", "ns8", "ns9", "dns",
	"www", "api", "admin", "staff", "portal", "cloud", "console", "status", "help", "support",
	"billing", "static", "assets", "cdn", "docs",
	MachineSubzone, "gateway", "ssh", "metadata", "boot", "pxe", "tftp", "ipxe",
	"mail", "smtp", "imap", "pop", "pop3", "mx", "webmail", "autodiscover", "autoconfig",
	"ftp", "vpn", "localhost", "wpad", "isatap", "hostmaster", "postmaster", "abuse",
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ReserveNames adds labels that tenants may not take as their slug, on top
// of the built-in list: the portal's host name, name servers and whatever
// the operator configures. Call it before the store is used.
func (s *Store) ReserveNames(labels ...string) error {
	for _, l := range labels {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" {
			continue
		}
		if !labelRE.MatchString(l) {
			return fmt.Errorf("reserved name %q is not a DNS label (letters, digits and inner hyphens, at most 63)", l)
		}
		if !slices.Contains(s.reserved, l) {
			s.reserved = append(s.reserved, l)
		}
	}
	return nil
}

// Reserved reports whether slug is kept for the region's own services.
func (s *Store) Reserved(slug string) bool {
	slug = strings.ToLower(slug)
	return slices.Contains(builtinReserved, slug) || slices.Contains(s.reserved, slug)
}

// ReservedNames lists every reserved label, built-in and configured.
func (s *Store) ReservedNames() []string {
	out := append(slices.Clone(builtinReserved), s.reserved...)
	slices.Sort(out)
	return slices.Compact(out)
}

// refuseReserved explains why an organisation name cannot be used.
func (s *Store) refuseReserved(name string) error {
	if slug := slugify(name); s.Reserved(slug) {
		return E(ErrInvalid, "tenant", fmt.Sprintf("%q is a name this cloud uses for its own services; choose another organisation name", slug))
	}
	return nil
}

// RenameReservedTenants gives a new slug to every tenant whose slug has
// become reserved (an upgrade, or a name the operator added), so its
// records stop answering for the region's own names. Each rename is
// recorded in the tenant's audit log with the new name. It returns how
// many tenants were renamed.
func (s *Store) RenameReservedTenants(ctx context.Context) (int, error) {
	var tenants []Tenant
	if err := s.db.WithContext(ctx).Where("slug IN ?", s.ReservedNames()).Order("created_at").Find(&tenants).Error; err != nil {
		return 0, fmt.Errorf("find tenants with reserved slugs: %w", err)
	}
	n := 0
	for _, ten := range tenants {
		t := &Target{Type: "tenant", ID: ten.ID, TenantID: ten.ID, Name: ten.Name}
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			slug, err := s.freeSlug(tx, ten.Slug+"-org")
			if err != nil {
				return err
			}
			res := tx.Model(&Tenant{}).Where("id = ? AND slug = ?", ten.ID, ten.Slug).Updates(map[string]any{"slug": slug, "updated_at": now()})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			detail := fmt.Sprintf("%q is reserved for the region's own services; the organisation's DNS names now end in .%s", ten.Slug, slug)
			return tx.Create(auditEntry(Actor{}, "tenant.slug_reserved", t, ResultSuccess, detail)).Error
		})
		if err != nil {
			return n, fmt.Errorf("rename tenant %s: %w", ten.ID, err)
		}
		s.log.Warn("tenant renamed: its slug is reserved", "tenant", ten.ID, "old_slug", ten.Slug)
		n++
	}
	return n, nil
}
