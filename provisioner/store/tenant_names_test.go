package store_test

import (
	"context"
	"errors"
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
