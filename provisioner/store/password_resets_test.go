package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestPasswordReset(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Now()
		s.SetClock(func() time.Time { return at })
		f := setup(t, s, "resetme")
		other := setup(t, s, "resetother")
		admin, err := s.CreateStaff(ctx, store.Actor{}, "admin-reset@isp.example", "hash", store.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		op, err := s.CreateStaff(ctx, store.Actor{}, "op-reset@isp.example", "hash", store.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		asAdmin, asOp := store.Actor{UserID: admin.ID, Email: admin.Email}, store.Actor{UserID: op.ID, Email: op.Email}
		hash := func(id string) string {
			t.Helper()
			u, err := s.GetUser(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return u.PasswordHash
		}
		waiting := func() []store.PasswordResetRequest {
			t.Helper()
			rs, _, err := s.PasswordResetRequests(ctx, store.Page{Number: 1, PerPage: 50})
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}

		// No account, no request, and nothing recorded.
		if _, _, err := s.RequestPasswordReset(ctx, store.Actor{IP: "192.0.2.9"}, "nobody@example.com", true); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown email: %v", err)
		}
		// Without email, requests wait for staff, once per user.
		for range 3 {
			if tok, _, err := s.RequestPasswordReset(ctx, store.Actor{IP: "192.0.2.9"}, " ResetMe@example.com ", false); err != nil || tok != "" {
				t.Fatalf("request for staff: %q %v", tok, err)
			}
		}
		if rs := waiting(); len(rs) != 1 || rs[0].UserID != f.owner.ID || rs[0].SourceIP != "192.0.2.9" || rs[0].TenantName == "" {
			t.Fatalf("waiting requests: %+v", rs)
		}
		// Staff make the link; the request is answered.
		if _, err := s.CreatePasswordResetLink(ctx, f.actor, other.owner.ID); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("a customer makes a link: %v", err)
		}
		if _, err := s.CreatePasswordResetLink(ctx, asOp, admin.ID); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("an operator makes a link for an admin: %v", err)
		}
		if _, err := s.CreatePasswordResetLink(ctx, asOp, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("link for no user: %v", err)
		}
		link, err := s.CreatePasswordResetLink(ctx, asOp, f.owner.ID)
		first, exp := link.Token, link.ExpiresAt
		if err != nil || !exp.After(at) || len(waiting()) != 0 {
			t.Fatalf("link by an operator: %v, expires %v, waiting %v", err, exp, waiting())
		}
		if u, err := s.PasswordResetUser(ctx, first); err != nil || u.ID != f.owner.ID {
			t.Fatalf("link's user: %v %v", u.ID, err)
		}
		// A newer link replaces it.
		second, _, err := s.RequestPasswordReset(ctx, store.Actor{IP: "192.0.2.9"}, f.owner.Email, true)
		if err != nil || second == "" || second == first {
			t.Fatalf("emailed link: %q %v", second, err)
		}
		if _, err := s.ResetPassword(ctx, store.Actor{}, first, "new-hash"); !errors.Is(err, store.ErrNotFound) || hash(f.owner.ID) != "hash" {
			t.Fatalf("replaced link: %v", err)
		}
		for _, bad := range []string{"", "pwr_nope"} {
			if _, err := s.ResetPassword(ctx, store.Actor{}, bad, "new-hash"); !errors.Is(err, store.ErrNotFound) || hash(f.owner.ID) != "hash" {
				t.Fatalf("token %q: %v", bad, err)
			}
		}
		sess, err := s.OpenSession(ctx, f.owner.ID, store.SessionWeb, "192.0.2.9", "test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.ResetPassword(ctx, store.Actor{IP: "192.0.2.9"}, second, "new-hash")
		if err != nil || u.ID != f.owner.ID || hash(f.owner.ID) != "new-hash" || hash(other.owner.ID) != "hash" {
			t.Fatalf("reset: %v", err)
		}
		if _, err := s.ActiveSession(ctx, sess.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a session outlived the reset: %v", err)
		}
		// Once only.
		if _, err := s.ResetPassword(ctx, store.Actor{}, second, "again"); !errors.Is(err, store.ErrNotFound) || hash(f.owner.ID) != "new-hash" {
			t.Fatalf("second use: %v", err)
		}
		// Links expire.
		lateLink, err := s.CreatePasswordResetLink(ctx, asAdmin, admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		late := lateLink.Token
		at = at.Add(store.PasswordResetTTL + time.Second)
		if _, err := s.PasswordResetUser(ctx, late); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired link shown: %v", err)
		}
		if _, err := s.ResetPassword(ctx, store.Actor{}, late, "late"); !errors.Is(err, store.ErrNotFound) || hash(admin.ID) != "hash" {
			t.Fatalf("expired link used: %v", err)
		}
	})
}

func TestPasswordResetOnce(t *testing.T) {
	s := openStore(t, pgtest.DSN(t))
	ctx := context.Background()
	f := setup(t, s, "resetrace")
	tok, _, err := s.RequestPasswordReset(ctx, store.Actor{}, f.owner.Email, true)
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := s.ResetPassword(ctx, store.Actor{}, tok, "raced")
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, store.ErrNotFound):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("the link worked %d times, want once", ok.Load())
	}
}
