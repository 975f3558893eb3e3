package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestSignUpByEmailConfirmation(t *testing.T) {
	eachDBRaw(t, func(t *testing.T, s *store.Store, raw *gorm.DB) {
		ctx := context.Background()
		pending := func() int64 {
			t.Helper()
			var n int64
			if err := raw.Table("signup_requests").Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		tenants := func() int64 {
			t.Helper()
			var n int64
			if err := raw.Table("tenants").Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		setup(t, s, "Globex") // globex@example.com has an account

		// Refusals keep nothing, and do not depend on the email.
		for _, c := range []struct{ name, tenant, email, field string }{
			{"reserved name", "Admin", "new@example.com", "tenant"},
			{"reserved name, known email", "Admin", "globex@example.com", "tenant"},
			{"taken name", "globex", "new@example.com", "tenant"},
			{"taken name, known email", "GLOBEX", "globex@example.com", "tenant"},
			{"bad email", "Acme", "not an email", "email"},
			{"empty name", " ", "new@example.com", "tenant"},
		} {
			tok, exists, err := s.RequestSignUp(ctx, store.Actor{IP: "192.0.2.1"}, c.tenant, c.email, "hash")
			if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrConflict) || e.Field != c.field {
				t.Errorf("%s: %q %v %v, want an error on %s", c.name, tok, exists, err, c.field)
			}
		}
		if n := pending(); n != 0 {
			t.Fatalf("%d sign-ups kept after refusals", n)
		}

		// A known email: nothing kept, nothing created.
		tok, exists, err := s.RequestSignUp(ctx, store.Actor{IP: "192.0.2.1"}, "Acme", "Globex@Example.com", "hash")
		if err != nil || !exists || tok != "" || pending() != 0 || tenants() != 1 {
			t.Fatalf("known email: %q %v %v, %d pending, %d tenants", tok, exists, err, pending(), tenants())
		}

		// A new email: kept until confirmed; two requests, one account.
		first, exists, err := s.RequestSignUp(ctx, store.Actor{IP: "192.0.2.1"}, "Acme", "Ops@Example.com", "hash-1")
		if err != nil || exists || first == "" {
			t.Fatalf("new email: %q %v %v", first, exists, err)
		}
		second, _, err := s.RequestSignUp(ctx, store.Actor{IP: "192.0.2.1"}, "Acme Two", "ops@example.com", "hash-2")
		if err != nil || second == "" || pending() != 2 || tenants() != 1 {
			t.Fatalf("second request: %v, %d pending, %d tenants", err, pending(), tenants())
		}
		var stored string
		if err := raw.Table("signup_requests").Select("token_hash").Where("tenant_name = 'Acme'").Scan(&stored).Error; err != nil || stored == first || stored != store.HashToken(first) {
			t.Fatalf("token kept as %q (%v), want its hash", stored, err)
		}
		req, err := s.PendingSignUp(ctx, first)
		if err != nil || req.Email != "ops@example.com" || req.TenantName != "Acme" {
			t.Fatalf("pending: %+v %v", req, err)
		}
		if _, err := s.PendingSignUp(ctx, first+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("wrong token: %v", err)
		}

		// Many clicks on the same link at once: one account.
		var wg sync.WaitGroup
		var mu sync.Mutex
		made := 0
		for range 8 {
			wg.Go(func() {
				_, u, err := s.ConfirmSignUp(ctx, store.Actor{IP: "192.0.2.1"}, first)
				switch {
				case err == nil:
					mu.Lock()
					made++
					mu.Unlock()
					if u.Email != "ops@example.com" || u.PasswordHash != "hash-1" || u.Role != store.RoleOwner {
						t.Errorf("confirmed user %+v", u)
					}
				case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict):
					t.Errorf("confirm: %v", err)
				}
			})
		}
		wg.Wait()
		if made != 1 || tenants() != 2 || pending() != 0 {
			t.Fatalf("%d accounts made, %d tenants, %d pending; want 1, 2, 0", made, tenants(), pending())
		}
		if _, _, err := s.ConfirmSignUp(ctx, store.Actor{}, second); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the other link of a confirmed email: %v", err)
		}

		// An expired link finishes nothing and is dropped later.
		old, _, err := s.RequestSignUp(ctx, store.Actor{}, "Initech", "boss@example.com", "hash")
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Exec("UPDATE signup_requests SET expires_at = ?", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ConfirmSignUp(ctx, store.Actor{}, old); !errors.Is(err, store.ErrNotFound) || tenants() != 2 {
			t.Errorf("expired link: %v, %d tenants", err, tenants())
		}
		if _, _, err := s.RequestSignUp(ctx, store.Actor{}, "Hooli", "gavin@example.com", "hash"); err != nil || pending() != 1 {
			t.Errorf("expired requests not dropped: %v, %d pending", err, pending())
		}
	})
}
