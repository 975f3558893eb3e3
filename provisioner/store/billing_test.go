package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	c.t = t
}

// advance moves a VM through one provisioner step to state.
func advance(t *testing.T, s *store.Store, vmID, state string) {
	t.Helper()
	ctx := context.Background()
	got := mustClaim(t, s, "worker", time.Minute)
	if got.ID != vmID {
		t.Fatalf("claimed %s, want %s", got.ID, vmID)
	}
	var err error
	if state == store.VMDeleted {
		err = s.MarkVMDeleted(ctx, vmID, "worker", false)
	} else {
		err = s.SetVMState(ctx, vmID, "worker", state, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	for {
		op, ok, err := s.NextOperation(ctx, vmID)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if err := s.StartOperation(ctx, op.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishOperation(ctx, op.ID, store.OpDone, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishWork(ctx, vmID, "worker", true, 0); err != nil {
		t.Fatal(err)
	}
}

func mustPrice(t *testing.T, s *store.Store, item string, hourly, monthly int64, billStopped bool, from string) store.Price {
	t.Helper()
	in := store.PriceInput{Item: item, HourlyMicros: hourly, MonthlyCapMinor: monthly, BillStopped: billStopped}
	if from != "" {
		ts, err := time.Parse("2006-01-02 15:04", from)
		if err != nil {
			t.Fatal(err)
		}
		in.EffectiveFrom = ts
	}
	p, err := s.SetPrice(context.Background(), staff, in)
	if err != nil {
		t.Fatalf("price %s: %v", item, err)
	}
	return p
}

type billed struct {
	hours, amount int64
}

// totals meters month until the clock and sums each resource's totals
// per price id.
func totals(t *testing.T, s *store.Store, tenantID, month string, until time.Time) map[string]map[string]billed {
	t.Helper()
	ctx := context.Background()
	if _, err := s.MeterMonth(ctx, month, until); err != nil {
		t.Fatal(err)
	}
	rows, err := s.UsageTotals(ctx, tenantID, month)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]billed{}
	for _, r := range rows {
		if out[r.ResourceName] == nil {
			out[r.ResourceName] = map[string]billed{}
		}
		b := out[r.ResourceName][r.PriceID]
		out[r.ResourceName][r.PriceID] = billed{b.hours + r.Hours, b.amount + r.AmountMinor}
	}
	return out
}

// TestMeteringLifecycle drives VMs and a port forward through create, run,
// stop, start and delete on a hand-moved clock, across a month boundary and
// a price change, and checks the hours and amounts billed.
func TestMeteringLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := &testClock{}
		s.SetClock(clock.now)
		clock.set("2026-11-30 22:30")
		addLAN(t, s)
		f := setup(t, s, "Metered")
		nano, err := s.GetPlan(ctx, "nano")
		if err != nil {
			t.Fatal(err)
		}
		small, err := s.GetPlan(ctx, "small")
		if err != nil {
			t.Fatal(err)
		}
		p1 := mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "")    // €0.006/h, up to €4.00
		ps := mustPrice(t, s, store.PlanItem(small.ID), 10000, 500, false, "") // stopped VMs of small do not bill
		pf := mustPrice(t, s, store.ItemPortForward, 1000, 50, true, "")

		web, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AllocateIP(ctx, web.ID); err != nil {
			t.Fatal(err)
		}
		clock.set("2026-11-30 22:40")
		advance(t, s, web.ID, store.VMRunning)
		idle, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "idle", "small"))
		if err != nil {
			t.Fatal(err)
		}
		advance(t, s, idle.ID, store.VMRunning)
		fwd, err := s.CreatePortForward(ctx, f.actor, f.tenant.ID, store.PortForwardInput{VMID: web.ID, PublicPort: 20002, TargetPort: 22}, fwdMin, fwdMax)
		if err != nil {
			t.Fatal(err)
		}

		clock.set("2026-11-30 23:10")
		for _, id := range []string{web.ID, idle.ID} {
			if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, id, store.OpStop); err != nil {
				t.Fatal(err)
			}
			advance(t, s, id, store.VMStopped)
		}
		clock.set("2026-12-01 00:20")
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, web.ID, store.OpStart); err != nil {
			t.Fatal(err)
		}
		advance(t, s, web.ID, store.VMRunning)

		// A price set now for 02:00 leaves the hours before it alone.
		clock.set("2026-12-01 00:30")
		p2 := mustPrice(t, s, store.PlanItem(nano.ID), 12000, 400, true, "2026-12-01 02:00")
		if _, err := s.SetPrice(ctx, staff, store.PriceInput{Item: store.PlanItem(nano.ID), HourlyMicros: 1, EffectiveFrom: time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a price for the past: %v", err)
		}

		clock.set("2026-12-01 03:05")
		if err := s.DeletePortForward(ctx, f.actor, f.tenant.ID, fwd.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, web.ID, store.OpDelete); err != nil {
			t.Fatal(err)
		}
		advance(t, s, web.ID, store.VMDeleted)

		// November: web ran 22:40–23:10 (hours 22 and 23), stopped after;
		// idle the same, but its stopped hours are free; the forward 22:40 on.
		nov := totals(t, s, f.tenant.ID, "2026-11", clock.now())
		want := map[string]map[string]billed{
			"web":                 {p1.ID: {2, 1}}, // 2 × €0.006 = €0.012 → €0.01
			"idle":                {ps.ID: {2, 2}}, // 2 × €0.01
			"port 20002 → web:22": {pf.ID: {2, 0}}, // 2 × €0.001 = €0.002 → €0.00
		}
		if !sameBilled(nov, want) {
			t.Errorf("November: %v, want %v", nov, want)
		}
		// December: web stopped then running in hour 0, running in 1 (old
		// price), 2 and 3 (new price) until 03:05; idle stayed stopped.
		dec := totals(t, s, f.tenant.ID, "2026-12", clock.now().Add(10*time.Hour))
		want = map[string]map[string]billed{
			"web":                 {p1.ID: {2, 1}, p2.ID: {2, 2}},
			"port 20002 → web:22": {pf.ID: {4, 0}},
		}
		if !sameBilled(dec, want) {
			t.Errorf("December: %v, want %v", dec, want)
		}
		// Metering again changes nothing.
		if again := totals(t, s, f.tenant.ID, "2026-12", clock.now().Add(10*time.Hour)); !sameBilled(again, dec) {
			t.Errorf("metered twice: %v, then %v", dec, again)
		}
		// On the first days of a month a pass also finishes the month before.
		reps, err := s.MeterNow(ctx)
		if err != nil || len(reps) != 2 || reps[0].Month != "2026-11" || !reps[0].Until.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) ||
			reps[1].Month != "2026-12" || !reps[1].Until.Equal(clock.now()) {
			t.Errorf("MeterNow: %+v %v", reps, err)
		}
		if again := totals(t, s, f.tenant.ID, "2026-11", clock.now()); !sameBilled(again, nov) {
			t.Errorf("November after MeterNow: %v, want %v", again, nov)
		}
		// Other tenants see none of it.
		other := setup(t, s, "Unmetered")
		if rows, err := s.UsageTotals(ctx, other.tenant.ID, "2026-12"); err != nil || len(rows) != 0 {
			t.Errorf("another tenant's totals: %v %v", rows, err)
		}
	})
}

func sameBilled(a, b map[string]map[string]billed) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv := b[k]
		if len(av) != len(bv) {
			return false
		}
		for p, x := range av {
			if bv[p] != x {
				return false
			}
		}
	}
	return true
}

// TestMoneyRounding writes down the storefront's arithmetic.
func TestMoneyRounding(t *testing.T) {
	for _, c := range []struct{ hours, micros, cap, want int64 }{
		{1, 6000, 400, 1},     // €0.006 → €0.01 (half away from zero)
		{1, 4999, 400, 0},     // €0.004999 → €0.00
		{1, 5000, 400, 1},     // €0.005 → €0.01
		{720, 6000, 400, 400}, // the cap: €4.32 → €4.00
		{100, 6000, 400, 60},  // €0.60
		{744, 10000, 0, 744},  // no cap
		{0, 6000, 400, 0},
	} {
		if got := store.LineAmount(c.hours, c.micros, c.cap); got != c.want {
			t.Errorf("LineAmount(%d h, %d µ, cap %d) = %d, want %d", c.hours, c.micros, c.cap, got, c.want)
		}
	}
	for _, c := range []struct {
		sub  int64
		bp   int
		want int64
	}{{1000, 2100, 210}, {1, 2100, 0}, {3, 2100, 1}, {-1000, 2100, -210}, {-3, 2100, -1}, {12345, 1950, 2407}} {
		if got := store.VATAmount(c.sub, c.bp); got != c.want {
			t.Errorf("VATAmount(%d, %d) = %d, want %d", c.sub, c.bp, got, c.want)
		}
	}
	for in, want := range map[string]int64{"4": 400, "4.5": 450, "-12.40": -1240, "0.01": 1, ".5": 50} {
		if got, err := store.ParseAmount(in); err != nil || got != want {
			t.Errorf("ParseAmount(%q) = %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-", "1.234", "1,50", "abc", "1e3", "--1", "+1", "1.-5"} {
		if got, err := store.ParseAmount(bad); err == nil {
			t.Errorf("ParseAmount(%q) = %d, want an error", bad, got)
		}
	}
	if got, err := store.ParseRate("0.006"); err != nil || got != 6000 {
		t.Errorf("ParseRate(0.006) = %d %v", got, err)
	}
	for m, want := range map[store.Money]string{{-1240, "EUR"}: "€-12.40", {400, "EUR"}: "€4.00", {105, "CHF"}: "CHF 1.05", {7, "USD"}: "$0.07"} {
		if got := m.String(); got != want {
			t.Errorf("%+v = %q, want %q", m, got, want)
		}
	}
	if got := store.FormatRate(6000, "EUR"); got != "€0.006" {
		t.Errorf("FormatRate = %q", got)
	}
}

// TestPriceAndSettingsValidation: every refusal names its field and
// changes nothing; accepted changes are audited.
func TestPriceAndSettingsValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := &testClock{}
		s.SetClock(clock.now)
		clock.set("2026-12-06 10:20")
		nano, err := s.GetPlan(ctx, "nano")
		if err != nil {
			t.Fatal(err)
		}
		item := store.PlanItem(nano.ID)
		at := func(s string) time.Time { ts, _ := time.Parse("2006-01-02 15:04", s); return ts }
		for _, c := range []struct {
			name  string
			in    store.PriceInput
			field string
		}{
			{"negative", store.PriceInput{Item: item, HourlyMicros: -1}, "hourly"},
			{"huge", store.PriceInput{Item: item, HourlyMicros: 2_000_000_000}, "hourly"},
			{"cap above a month", store.PriceInput{Item: item, HourlyMicros: 6000, MonthlyCapMinor: 500}, "monthly"},
			{"past", store.PriceInput{Item: item, HourlyMicros: 6000, EffectiveFrom: at("2026-12-06 09:00")}, "effective_from"},
			{"not on the hour", store.PriceInput{Item: item, HourlyMicros: 6000, EffectiveFrom: at("2026-12-06 11:30")}, "effective_from"},
			{"no such plan", store.PriceInput{Item: store.PlanItem("nope"), HourlyMicros: 6000}, "item"},
			{"no such item", store.PriceInput{Item: "backups", HourlyMicros: 6000}, "item"},
		} {
			_, err := s.SetPrice(ctx, staff, c.in)
			if e, ok := store.AsError(err); !ok || e.Field != c.field {
				t.Errorf("%s: %v, want an error on %s", c.name, err, c.field)
			}
		}
		if ps, err := s.Prices(ctx); err != nil || len(ps) != 0 {
			t.Fatalf("refused prices were kept: %v %v", ps, err)
		}
		p := mustPrice(t, s, item, 6000, 400, true, "")
		if !p.EffectiveFrom.Equal(at("2026-12-06 10:00")) {
			t.Errorf("a price without a date starts %v, want the current hour", p.EffectiveFrom)
		}
		// A second version for an hour already in effect is refused; a
		// scheduled one is replaced by a newer decision.
		if _, err := s.SetPrice(ctx, staff, store.PriceInput{Item: item, HourlyMicros: 7000}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("two prices for the current hour: %v", err)
		}
		mustPrice(t, s, item, 8000, 400, true, "2026-12-07 00:00")
		later := mustPrice(t, s, item, 9000, 400, true, "2026-12-07 00:00")
		ps, err := s.Prices(ctx)
		if err != nil || len(ps) != 2 || ps[1].ID != later.ID {
			t.Errorf("prices after rescheduling: %+v %v", ps, err)
		}
		if cur, ok, err := s.CurrentPrice(ctx, item); err != nil || !ok || cur.ID != p.ID {
			t.Errorf("current price %+v %v %v, want %s", cur, ok, err, p.ID)
		}

		// Settings.
		for _, c := range []struct {
			cur   string
			vat   int
			field string
		}{{"XYZ", 2100, "currency"}, {"EUR", -1, "vat"}, {"EUR", 6000, "vat"}} {
			err := s.SetBillingSettings(ctx, staff, c.cur, c.vat)
			if e, ok := store.AsError(err); !ok || e.Field != c.field {
				t.Errorf("settings %s %d: %v, want an error on %s", c.cur, c.vat, err, c.field)
			}
		}
		if err := s.SetBillingSettings(ctx, staff, "usd", 2100); !errors.Is(err, store.ErrConflict) {
			t.Errorf("changing the currency under existing prices: %v", err)
		}
		if err := s.SetBillingSettings(ctx, staff, "eur", 2100); err != nil {
			t.Fatal(err)
		}
		b, err := s.GetBillingSettings(ctx)
		if err != nil || b.Currency != "EUR" || b.VATBP != 2100 {
			t.Errorf("settings %+v %v", b, err)
		}
		audit, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "billing.", Result: store.ResultSuccess}, store.Page{})
		if err != nil || len(audit) != 4 {
			t.Errorf("%d billing audit entries (%v), want 4: three prices and the settings", len(audit), err)
		}
	})
}
