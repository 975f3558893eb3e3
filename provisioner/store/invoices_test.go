package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// runFor runs a new VM of plan from the clock's time for a while.
func runFor(t *testing.T, s *store.Store, clock *testClock, f fixture, name, plan string, from string, d time.Duration) store.VM {
	t.Helper()
	ctx := context.Background()
	clock.set(from)
	vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, name, plan))
	if err != nil {
		t.Fatal(err)
	}
	advance(t, s, vm.ID, store.VMRunning)
	clock.mu.Lock()
	clock.t = clock.t.Add(d)
	clock.mu.Unlock()
	if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpDelete); err != nil {
		t.Fatal(err)
	}
	advance(t, s, vm.ID, store.VMDeleted)
	return vm
}

func TestInvoicing(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clock := &testClock{}
		s.SetClock(clock.now)
		clock.set("2026-11-01 00:00")
		addLAN(t, s)
		a, b, idle := setup(t, s, "Alpha"), setup(t, s, "Beta"), setup(t, s, "Idle")
		nano, _ := s.GetPlan(ctx, "nano")
		small, _ := s.GetPlan(ctx, "small")
		mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "")   // €0.006/h up to €4
		mustPrice(t, s, store.PlanItem(small.ID), 15000, 900, true, "") // €0.015/h up to €9
		if err := s.SetBillingSettings(ctx, staff, "EUR", 2100); err != nil {
			t.Fatal(err)
		}
		runFor(t, s, clock, a, "web", "nano", "2026-11-02 10:00", 100*time.Hour)   // 100 h: €0.60
		runFor(t, s, clock, a, "db", "small", "2026-11-03 00:00", 700*time.Hour)   // 672 h to month end: €10.08, capped at €9.00
		runFor(t, s, clock, b, "tiny", "nano", "2026-11-10 00:30", 10*time.Minute) // 1 h: €0.006 → €0.01

		clock.set("2026-11-30 23:59")
		if _, err := s.IssueInvoices(ctx, staff, "2026-11", ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("invoicing a month before it ended: %v", err)
		}
		clock.set("2026-12-01 00:05")
		rep, err := s.IssueInvoices(ctx, staff, "2026-11", "")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Issued != 2 || rep.Already != 0 {
			t.Errorf("report %+v, want 2 issued", rep)
		}
		// Alpha: 0.60 + 9.00 = 9.60, VAT 21 % = 2.016 → 2.02, total 11.62.
		// Beta: 0.01, VAT 0.0021 → 0.00, total 0.01.
		if rep.Total.Minor != 1162+1 {
			t.Errorf("issued total %s, want €11.63", rep.Total)
		}
		list, n, err := s.ListInvoices(ctx, a.tenant.ID, store.Page{})
		if err != nil || n != 1 {
			t.Fatalf("alpha's invoices: %d %v", n, err)
		}
		inv, err := s.GetInvoice(ctx, a.tenant.ID, list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if inv.SubtotalMinor != 960 || inv.VATMinor != 202 || inv.TotalMinor != 1162 || inv.Currency != "EUR" || inv.TenantName != "Alpha" || inv.Month != "2026-11" {
			t.Errorf("alpha's invoice %+v", inv)
		}
		var descs []string
		for _, l := range inv.Lines {
			descs = append(descs, fmt.Sprintf("%s = %d", l.Description, l.AmountMinor))
		}
		want := []string{"VM db (plan small): 672 h × €0.015, capped at €9.00 a month = 900", "VM web (plan nano): 100 h × €0.006 = 60"}
		if !slices.Equal(descs, want) {
			t.Errorf("lines %q, want %q", descs, want)
		}
		numbers := map[string]bool{}
		all, _, _ := s.ListInvoices(ctx, "", store.Page{})
		for _, i := range all {
			numbers[i.Number] = true
		}
		if !numbers["FX-000001"] || !numbers["FX-000002"] || len(numbers) != 2 {
			t.Errorf("numbers %v, want FX-000001 and FX-000002", numbers)
		}
		// Again: nothing new, nothing renumbered.
		if rep, err := s.IssueInvoices(ctx, staff, "2026-11", ""); err != nil || rep.Issued != 0 || rep.Already != 2 {
			t.Errorf("second run: %+v %v", rep, err)
		}
		// Isolation: another tenant's invoice is not found.
		if _, err := s.GetInvoice(ctx, b.tenant.ID, inv.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("beta reading alpha's invoice: %v", err)
		}
		if l, n, err := s.ListInvoices(ctx, idle.tenant.ID, store.Page{}); err != nil || n != 0 || len(l) != 0 {
			t.Errorf("idle tenant's invoices: %v %d %v", l, n, err)
		}

		// Balance: owes the invoice.
		bal, err := s.GetBalance(ctx, a.tenant.ID)
		if err != nil || bal.Balance.Minor != -1162 || bal.CreditLimit != nil || !bal.Overdue() {
			t.Errorf("alpha's balance %+v %v", bal, err)
		}
		// Credit notes: never more than the invoice, numbered in sequence.
		if _, err := s.CreateCreditNote(ctx, staff, inv.ID, 961, "too much"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("crediting more than the invoice: %v", err)
		}
		if _, err := s.CreateCreditNote(ctx, staff, inv.ID, 100, " "); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a credit note without a reason: %v", err)
		}
		cn, err := s.CreateCreditNote(ctx, staff, inv.ID, 500, "outage on 12 November")
		if err != nil {
			t.Fatal(err)
		}
		if cn.Number != "FX-000003" || cn.SubtotalMinor != -500 || cn.VATMinor != -105 || cn.TotalMinor != -605 || cn.Kind != store.CreditNoteKind {
			t.Errorf("credit note %+v", cn)
		}
		if _, err := s.CreateCreditNote(ctx, staff, inv.ID, 461, "more"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("crediting past what is left: %v", err)
		}
		// Payments.
		for _, c := range []struct {
			kind, ref string
			amount    int64
			field     string
		}{{"gift", "x", 100, "kind"}, {store.PaymentKind, "", 100, "reference"}, {store.PaymentKind, "TR-1", 0, "amount"}, {store.CreditKind, "", -5, "amount"}} {
			_, err := s.RecordPayment(ctx, staff, a.tenant.ID, c.kind, c.amount, c.ref, "")
			if e, ok := store.AsError(err); !ok || e.Field != c.field {
				t.Errorf("payment %+v: %v, want an error on %s", c, err, c.field)
			}
		}
		if _, err := s.RecordPayment(ctx, staff, a.tenant.ID, store.PaymentKind, 500, "TR-2026-1187", "bank transfer"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordPayment(ctx, staff, a.tenant.ID, store.CreditKind, 57, "", "goodwill"); err != nil {
			t.Fatal(err)
		}
		bal, err = s.GetBalance(ctx, a.tenant.ID)
		if err != nil || bal.Balance.Minor != 0 || bal.Paid.Minor != 500 || bal.Credited.Minor != 57 || bal.Invoiced.Minor != 1162-605 || bal.Overdue() {
			t.Errorf("alpha's balance after paying %+v %v", bal, err)
		}
		if p, n, err := s.ListPayments(ctx, a.tenant.ID, store.Page{}); err != nil || n != 2 || len(p) != 2 {
			t.Errorf("payments %v %d %v", p, n, err)
		}
		od, err := s.OverdueTenants(ctx)
		if err != nil || len(od) != 1 || od[0].TenantID != b.tenant.ID || od[0].Balance.Balance.Minor != -1 {
			t.Errorf("overdue %+v %v, want beta at €-0.01", od, err)
		}
		audit, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "invoice."}, store.Page{})
		if err != nil || len(audit) != 5 { // two issued, one credit note, two refused credit notes
			t.Errorf("%d invoice audit entries (%v), want 5", len(audit), err)
		}
	})
}

// TestInvoiceNumbersUnderConcurrency issues invoices tenant by tenant and
// credit notes from parallel workers on PostgreSQL: the numbers are 1…n,
// each once.
func TestInvoiceNumbersUnderConcurrency(t *testing.T) {
	s := openStore(t, pgtest.DSN(t))
	ctx := context.Background()
	clock := &testClock{}
	s.SetClock(clock.now)
	addLAN(t, s)
	nano, _ := s.GetPlan(ctx, "nano")
	clock.set("2026-11-01 00:00")
	mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "")
	var fs []fixture
	for i := range 24 {
		f := setup(t, s, fmt.Sprintf("Seq%d", i))
		fs = append(fs, f)
		runFor(t, s, clock, f, "vm", "nano", "2026-11-02 00:00", time.Duration(10+i)*time.Hour)
	}
	clock.set("2026-12-01 01:00")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(fs); i += 8 {
				// Twice each: a repeated run must not issue again.
				for range 2 {
					if _, err := s.IssueInvoices(ctx, staff, "2026-11", fs[i].tenant.ID); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	all, n, err := s.ListInvoices(ctx, "", store.Page{PerPage: 100})
	if err != nil || n != len(fs) {
		t.Fatalf("%d invoices (%v), want %d", n, err, len(fs))
	}
	for _, inv := range all {
		inv := inv
		wg.Go(func() {
			if _, err := s.CreateCreditNote(ctx, staff, inv.ID, 1, "rounding"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _, err = s.ListInvoices(ctx, "", store.Page{PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, inv := range all {
		got = append(got, inv.Number)
	}
	slices.Sort(got)
	for i, num := range got {
		if want := fmt.Sprintf("FX-%06d", i+1); num != want {
			t.Fatalf("numbers %s…: %q at %d, want %q (gap or duplicate)", strings.Join(got[:min(len(got), 5)], ", "), num, i, want)
		}
	}
	if len(got) != 2*len(fs) {
		t.Errorf("%d numbers, want %d", len(got), 2*len(fs))
	}
}

// TestCreditLimitParallelOrders places 50 orders at once on PostgreSQL for
// a tenant whose limit allows two VMs' month: exactly two are accepted, and
// the others say why.
func TestCreditLimitParallelOrders(t *testing.T) {
	s := openStore(t, pgtest.DSN(t))
	ctx := context.Background()
	clock := &testClock{}
	s.SetClock(clock.now)
	clock.set("2026-12-06 10:00")
	addLAN(t, s)
	f := setup(t, s, "Limited")
	if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, store.Quota{Instances: 100, VCPUs: 400, MemoryMiB: 1 << 20, DiskGiB: 10000, SSHKeys: 10, PortForwards: 10}); err != nil {
		t.Fatal(err)
	}
	nano, _ := s.GetPlan(ctx, "nano")
	mustPrice(t, s, store.PlanItem(nano.ID), 6000, 400, true, "") // up to €4.00 a month
	limit := int64(1000)                                          // €10.00
	if err := s.SetCreditLimit(ctx, staff, f.tenant.ID, &limit); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCreditLimit(ctx, staff, f.tenant.ID, ptr(int64(-1))); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a negative limit: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	var msg string
	for i := range 50 {
		wg.Go(func() {
			_, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%02d", i), "nano"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrCreditLimit):
				refused++
				msg = err.Error()
			default:
				t.Errorf("order %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok != 2 || refused != 48 {
		t.Errorf("%d accepted, %d refused; want 2 and 48", ok, refused)
	}
	want := "your balance is €0.00; with this order your resources could bring it to €-12.00 by the end of the month, over your €10.00 credit limit"
	if !strings.Contains(msg, want) {
		t.Errorf("refusal %q, want it to say %q", msg, want)
	}
	// A payment makes room.
	if _, err := s.RecordPayment(ctx, staff, f.tenant.ID, store.PaymentKind, 400, "TR-9", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "after-payment", "nano")); err != nil {
		t.Errorf("order after a payment: %v", err)
	}
}
