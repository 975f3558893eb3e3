package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestStaffTwoFactorRequirement(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		admin, err := s.CreateStaff(ctx, store.Actor{}, "root-2fa@isp.example", "hash", store.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		op, err := s.CreateStaff(ctx, store.Actor{}, "op-2fa@isp.example", "hash", store.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		customer := setup(t, s, "staff2fa")
		as := store.Actor{UserID: admin.ID, Email: admin.Email}
		required := func() bool {
			t.Helper()
			on, err := s.StaffTwoFactorRequired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return on
		}
		enable := func(id string) {
			t.Helper()
			if err := s.BeginTwoFactor(ctx, id, "sealed"); err != nil {
				t.Fatal(err)
			}
			if err := s.EnableTwoFactor(ctx, store.Actor{UserID: id}, id, 100, []string{"h-" + id}); err != nil {
				t.Fatal(err)
			}
		}
		if required() {
			t.Fatal("required by default")
		}

		// An admin without a second factor cannot require one.
		err = s.SetStaffTwoFactorRequired(ctx, as, true)
		if !errors.Is(err, store.ErrInvalid) || required() {
			t.Fatalf("require without own second factor: %v, required=%v", err, required())
		}
		// Nor can a customer, with or without one.
		enable(customer.owner.ID)
		if err := s.SetStaffTwoFactorRequired(ctx, customer.actor, true); !errors.Is(err, store.ErrForbidden) || required() {
			t.Fatalf("customer requires: %v", err)
		}

		enable(admin.ID)
		if err := s.SetStaffTwoFactorRequired(ctx, as, true); err != nil || !required() {
			t.Fatalf("require: %v, required=%v", err, required())
		}
		// Staff keep their second factor while it is required; customers
		// may still turn theirs off.
		if err := s.DisableTwoFactor(ctx, as, admin.ID); !errors.Is(err, store.ErrForbidden) {
			t.Fatalf("staff turns off 2FA while required: %v", err)
		}
		if u, _ := s.GetUser(ctx, admin.ID); !u.TwoFactor() {
			t.Fatal("the refused turn-off changed the account")
		}
		if err := s.DisableTwoFactor(ctx, customer.actor, customer.owner.ID); err != nil {
			t.Fatalf("customer turns off 2FA: %v", err)
		}
		// An operator without a second factor is not blocked by the store
		// from enrolling; the portal sends them there.
		enable(op.ID)

		if err := s.SetStaffTwoFactorRequired(ctx, as, false); err != nil || required() {
			t.Fatalf("lift: %v, required=%v", err, required())
		}
		if err := s.DisableTwoFactor(ctx, as, admin.ID); err != nil {
			t.Fatalf("turn off after lifting: %v", err)
		}

		es, _, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Number: 1, PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, e := range es {
			got[e.Action+"/"+e.Result]++
		}
		for _, want := range []string{"staff.two_factor_required/success", "staff.two_factor_required/failure", "staff.two_factor_optional/success", "user.two_factor_off/failure"} {
			if got[want] == 0 {
				t.Errorf("no audit entry %s in %v", want, got)
			}
		}
	})
}
