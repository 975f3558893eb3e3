package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestTenantNamesDistinct(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, _, err := s.SignUp(ctx, store.Actor{}, "PayPal Shop", "a@paypal.example", "hash"); err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			tenant string
			want   error
		}{
			"same name, other case": {"paypal shop", store.ErrConflict},
			"extra spaces":          {"  PayPal   Shop ", store.ErrConflict},
			"Cyrillic а in Latin":   {"Pаypal Shop", store.ErrInvalid},
			"Greek ο in Latin":      {"Gοogle", store.ErrInvalid},
		} {
			_, _, err := s.SignUp(ctx, store.Actor{}, tc.tenant, "b@other.example", "hash")
			if e, ok := store.AsError(err); !errors.Is(err, tc.want) || !ok || e.Field != "tenant" {
				t.Errorf("%s (%q): %v, want %v on the tenant field", name, tc.tenant, err, tc.want)
			}
		}
		if _, err := s.GetUserByEmail(ctx, "b@other.example"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused sign-up left its user: %v", err)
		}
		// Accents within one script are fine.
		for i, name := range []string{"Café Zürich", "Ørsted Løsninger", "Tokyo 東京"} {
			if _, _, err := s.SignUp(ctx, store.Actor{}, name, "u"+string(rune('a'+i))+"@scripts.example", "hash"); err != nil {
				t.Errorf("%q: %v", name, err)
			}
		}
	})
}

// TestReservedTenantNames refuses the names the region publishes for
// itself, built in and configured, and renames a tenant that holds one.
func TestReservedTenantNames(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// Signed up before "legacy" was reserved.
		old, _, err := s.SignUp(ctx, store.Actor{}, "Legacy", "owner@legacy.example", "hash")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ReserveNames("Legacy", "status2"); err != nil {
			t.Fatal(err)
		}
		if err := s.ReserveNames("not a label"); err == nil {
			t.Error("a reserved name with spaces was accepted")
		}
		for _, name := range []string{"ns1", "NS2", "www", "Admin", "cloud", "machines", "Mail", "API", "gateway", "status2", "legacy"} {
			_, _, err := s.SignUp(ctx, store.Actor{}, name, "x@"+strings.ToLower(name)+".example", "hash")
			if e, ok := store.AsError(err); !errors.Is(err, store.ErrInvalid) || !ok || e.Field != "tenant" || !strings.Contains(e.Message, "choose another") {
				t.Errorf("sign-up as %q: %v; want refused on the tenant field", name, err)
			}
		}
		if _, err := s.GetUserByEmail(ctx, "x@ns1.example"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused sign-up left its user: %v", err)
		}
		// Names that merely contain a reserved word are fine.
		for i, name := range []string{"NS1 Networks", "Cloud Nine", "www-shop"} {
			if _, _, err := s.SignUp(ctx, store.Actor{}, name, fmt.Sprintf("ok%d@names.example", i), "hash"); err != nil {
				t.Errorf("%q: %v", name, err)
			}
		}

		n, err := s.RenameReservedTenants(ctx)
		if err != nil || n != 1 {
			t.Fatalf("renamed %d tenants (%v), want 1", n, err)
		}
		got, err := s.GetTenant(ctx, old.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Slug != "legacy-org" || got.Name != "Legacy" {
			t.Errorf("renamed tenant: name %q slug %q, want slug legacy-org", got.Name, got.Slug)
		}
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: old.ID}, store.Page{Number: 1, PerPage: 50})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			found = found || e.Action == "tenant.slug_reserved" && strings.Contains(e.Detail, "legacy-org")
		}
		if !found {
			t.Errorf("the rename is not in the tenant's audit log: %+v", entries)
		}
		if n, err := s.RenameReservedTenants(ctx); err != nil || n != 0 {
			t.Errorf("second pass renamed %d (%v)", n, err)
		}
	})
}
