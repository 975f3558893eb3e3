package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestTwoFactor(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "twofactor")
		other := setup(t, s, "otherfactor")
		get := func(id string) store.User {
			t.Helper()
			u, err := s.GetUser(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		left := func(id string) int {
			t.Helper()
			n, err := s.RecoveryCodesLeft(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Nothing to confirm before a secret waits.
		if err := s.EnableTwoFactor(ctx, f.actor, f.owner.ID, 100, []string{"h1"}); !errors.Is(err, store.ErrConflict) || get(f.owner.ID).TwoFactor() || left(f.owner.ID) != 0 {
			t.Fatalf("enable without a secret: %v", err)
		}
		if err := s.BeginTwoFactor(ctx, "00000000-0000-4000-8000-000000000000", "sealed"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("begin for nobody: %v", err)
		}
		if err := s.BeginTwoFactor(ctx, f.owner.ID, "sealed-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginTwoFactor(ctx, f.owner.ID, "sealed-2"); err != nil || get(f.owner.ID).TOTPSecret != "sealed-2" {
			t.Fatalf("begin again replaces the waiting secret: %v", err)
		}
		// A secret in waiting is not in force, and its steps are not spent.
		if ok, err := s.UseTwoFactorStep(ctx, f.owner.ID, 100); ok || err != nil {
			t.Errorf("a step spent before two-factor is on: %v %v", ok, err)
		}
		if err := s.EnableTwoFactor(ctx, f.actor, f.owner.ID, 100, []string{"h1", "h2", "h3"}); err != nil {
			t.Fatal(err)
		}
		u := get(f.owner.ID)
		if !u.TwoFactor() || u.TOTPLastStep != 100 || left(f.owner.ID) != 3 {
			t.Fatalf("after enable: %+v, %d codes", u, left(f.owner.ID))
		}
		if err := s.BeginTwoFactor(ctx, f.owner.ID, "sealed-3"); !errors.Is(err, store.ErrConflict) || get(f.owner.ID).TOTPSecret != "sealed-2" {
			t.Errorf("begin while on: %v", err)
		}
		if err := s.EnableTwoFactor(ctx, f.actor, f.owner.ID, 101, []string{"x"}); !errors.Is(err, store.ErrConflict) || left(f.owner.ID) != 3 {
			t.Errorf("enable twice: %v", err)
		}

		// Steps go forward only: the confirming step, an older one, then a
		// newer one works once.
		for _, c := range []struct {
			step int64
			ok   bool
		}{{100, false}, {99, false}, {101, true}, {101, false}} {
			if ok, err := s.UseTwoFactorStep(ctx, f.owner.ID, c.step); ok != c.ok || err != nil {
				t.Errorf("step %d: %v %v, want %v", c.step, ok, err, c.ok)
			}
		}

		// Recovery codes work once, only for their user.
		if ok, err := s.UseRecoveryCode(ctx, other.owner.ID, "h1"); ok || err != nil {
			t.Errorf("another user's code: %v %v", ok, err)
		}
		if ok, err := s.UseRecoveryCode(ctx, f.owner.ID, "h1"); !ok || err != nil {
			t.Errorf("a code: %v %v", ok, err)
		}
		if ok, err := s.UseRecoveryCode(ctx, f.owner.ID, "h1"); ok || err != nil || left(f.owner.ID) != 2 {
			t.Errorf("a code twice: %v %v", ok, err)
		}
		if err := s.ReplaceRecoveryCodes(ctx, f.actor, f.owner.ID, []string{"n1", "n2"}); err != nil || left(f.owner.ID) != 2 {
			t.Fatalf("replace: %v", err)
		}
		if ok, _ := s.UseRecoveryCode(ctx, f.owner.ID, "h2"); ok {
			t.Error("an old code works after replacing")
		}
		if err := s.ReplaceRecoveryCodes(ctx, other.actor, other.owner.ID, []string{"z"}); !errors.Is(err, store.ErrConflict) || left(other.owner.ID) != 0 {
			t.Errorf("codes for a user without two-factor: %v", err)
		}

		if err := s.DisableTwoFactor(ctx, f.actor, f.owner.ID); err != nil {
			t.Fatal(err)
		}
		if u := get(f.owner.ID); u.TwoFactor() || u.TOTPSecret != "" || left(f.owner.ID) != 0 {
			t.Errorf("after disable: %+v", u)
		}
		if ok, _ := s.UseTwoFactorStep(ctx, f.owner.ID, 500); ok {
			t.Error("a step spent after disable")
		}
		if err := s.DisableTwoFactor(ctx, f.actor, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("disable for nobody: %v", err)
		}
	})
}

// TestTwoFactorStepOnce sends one code from many connections at once: it
// is accepted exactly once.
func TestTwoFactorStepOnce(t *testing.T) {
	s := openStore(t, pgtest.DSN(t))
	ctx := context.Background()
	f := setup(t, s, "replay")
	if err := s.BeginTwoFactor(ctx, f.owner.ID, "sealed"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableTwoFactor(ctx, f.actor, f.owner.ID, 10, []string{"r1"}); err != nil {
		t.Fatal(err)
	}
	var steps, codes atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if ok, err := s.UseTwoFactorStep(ctx, f.owner.ID, 11); err != nil {
				t.Error(err)
			} else if ok {
				steps.Add(1)
			}
			if ok, err := s.UseRecoveryCode(ctx, f.owner.ID, "r1"); err != nil {
				t.Error(err)
			} else if ok {
				codes.Add(1)
			}
		})
	}
	wg.Wait()
	if steps.Load() != 1 || codes.Load() != 1 {
		t.Errorf("accepted %d times the step and %d times the recovery code, want once each", steps.Load(), codes.Load())
	}
}
