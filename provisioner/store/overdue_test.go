package store_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestOverdueTenantsMatchesBalances: the one-query overdue list holds
// exactly the tenants whose GetBalance is overdue, with the same balances,
// across invoiced and unbilled months, payments, credit notes, own and
// default credit limits.
func TestOverdueTenantsMatchesBalances(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := &testClock{}
		s.SetClock(clock.now)
		clock.set("2026-11-01 00:00")
		addLAN(t, s)
		nano, _ := s.GetPlan(ctx, "nano")
		mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "")
		if err := s.SetBillingSettings(ctx, staff, "EUR", 2100); err != nil {
			t.Fatal(err)
		}
		owes, paid, limited, unbilled, both, zeroLimit := setup(t, s, "Owes"), setup(t, s, "Paid"), setup(t, s, "Limited"),
			setup(t, s, "Unbilled"), setup(t, s, "Both"), setup(t, s, "Zerolimit")
		idle := setup(t, s, "Idle")
		all := []fixture{owes, paid, limited, unbilled, both, zeroLimit, idle}
		for i, f := range []fixture{owes, paid, limited, both, zeroLimit} {
			runFor(t, s, clock, f, "nov", "nano", "2026-11-02 00:00", time.Duration(30+10*i)*time.Hour)
		}
		clock.set("2026-12-01 00:05")
		if _, err := s.IssueInvoices(ctx, staff, "2026-11", ""); err != nil {
			t.Fatal(err)
		}
		for i, f := range []fixture{unbilled, both} {
			runFor(t, s, clock, f, "dec", "nano", "2026-12-01 01:00", time.Duration(20+7*i)*time.Hour)
		}
		clock.set("2026-12-03 00:00")
		if _, err := s.MeterMonth(ctx, "2026-12", clock.now()); err != nil {
			t.Fatal(err)
		}
		bal, err := s.GetBalance(ctx, paid.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, staff, paid.tenant.ID, store.PaymentKind, -bal.Balance.Minor, "TR-1", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, staff, both.tenant.ID, store.CreditKind, 7, "", "goodwill"); err != nil {
			t.Fatal(err)
		}
		big, zero := int64(100000), int64(0)
		if err := s.SetCreditLimit(ctx, staff, limited.tenant.ID, &big); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCreditLimit(ctx, staff, zeroLimit.tenant.ID, &zero); err != nil {
			t.Fatal(err)
		}

		var want []store.OverdueTenant
		for _, f := range all {
			b, err := s.GetBalance(ctx, f.tenant.ID)
			if err != nil {
				t.Fatal(err)
			}
			if b.Overdue() {
				want = append(want, store.OverdueTenant{TenantID: f.tenant.ID, Name: f.tenant.Name, Balance: b})
			}
		}
		sort.SliceStable(want, func(i, j int) bool { return want[i].Balance.Balance.Minor < want[j].Balance.Balance.Minor })
		if len(want) != 4 { // owes, unbilled, both, zero limit
			t.Fatalf("%d overdue tenants by their balances, want 4: %+v", len(want), want)
		}
		got, err := s.OverdueTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byBalance := func(l []store.OverdueTenant) map[string]store.OverdueTenant {
			m := map[string]store.OverdueTenant{}
			for _, o := range l {
				m[o.TenantID] = o
			}
			return m
		}
		if d := cmp.Diff(byBalance(want), byBalance(got)); d != "" {
			t.Errorf("overdue tenants (-balances +list):\n%s", d)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].Balance.Balance.Minor > got[i].Balance.Balance.Minor {
				t.Errorf("not most owing first: %+v", got)
			}
		}
	})
}
