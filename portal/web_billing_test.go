package portal

import (
	"context"

	"github.com/PuerkitoBio/goquery"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestBillingPages drives the billing pages as a browser would: staff price
// a plan (a bad rate is refused and kept in the form), the order form shows
// the price and the order total, the owner's billing page and dashboard
// show the month, staff issue the month, the invoice page and its PDF work
// for the owner only, and staff record a payment.
func TestBillingPages(t *testing.T) {
	e := newEnv(t)
	clock := &billingClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	e.st.SetClock(clock.now)
	staffB := e.staffBrowser(store.RoleAdmin)
	owner := e.browser()
	owner.signup("Pages Co", "o@pages.example")
	nano, err := e.st.GetPlan(context.Background(), "nano")
	if err != nil {
		t.Fatal(err)
	}
	res, doc := staffB.post("/admin/billing/prices", url.Values{"item": {store.PlanItem(nano.ID)}, "hourly": {"abc"}, "monthly_cap": {"4.00"}})
	if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`input[name="hourly"]`).AttrOr("value", "") != "abc" {
		t.Fatalf("bad rate: %d", res.StatusCode)
	}
	if res, _ := staffB.post("/admin/billing/settings", url.Values{"currency": {"EUR"}, "vat_rate": {"21"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("settings: %d", res.StatusCode)
	}
	if res, _ := staffB.post("/admin/billing/prices", url.Values{"item": {store.PlanItem(nano.ID)}, "hourly": {"0.006"}, "monthly_cap": {"4.00"}, "bills_when_stopped": {"1"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("price: %d", res.StatusCode)
	}
	_, doc = staffB.get("/admin/billing")
	if !strings.Contains(doc.Find(`[data-testid="price-row"]`).Text(), "€0.006 an hour, up to €4.00 a month") {
		t.Errorf("price table: %q", doc.Find(`[data-testid="billing-prices"]`).Text())
	}

	// The owner runs a VM; the billing page and dashboard show the month.
	e.image("debian-12")
	tenantID := ""
	ts, _, _ := e.st.ListTenants(context.Background(), "Pages", store.Page{})
	if len(ts) == 1 {
		tenantID = ts[0].ID
	}
	f := store.Actor{Email: "o@pages.example", TenantID: tenantID}
	key, err := e.st.AddSSHKey(context.Background(), f, tenantID, "laptop", pubKey(t, "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	_, doc = owner.get("/vms/new")
	var nanoCard string
	doc.Find(`[data-testid="plan-card"]`).Each(func(_ int, s *goquery.Selection) {
		if s.AttrOr("data-plan", "") == nano.ID {
			nanoCard = s.Find(`[data-testid="plan-price"]`).Text() + " | " + s.AttrOr("data-total", "")
		}
	})
	if nanoCard != "€0.006 an hour, up to €4.00 a month | up to €4.84 a month, VAT included" {
		t.Errorf("nano on the order form: %q", nanoCard)
	}
	if got := doc.Find(`[data-testid="order-total"]`).Text(); !strings.Contains(got, "Order total") {
		t.Errorf("order total: %q", got)
	}

	vm, err := e.st.CreateVM(context.Background(), f, tenantID, store.VMOrder{Name: "web", Plan: "nano", Image: "debian-12", SSHKeys: []string{key.ID}})
	if err != nil {
		t.Fatal(err)
	}
	runVM(t, e, vm.ID)
	clock.set(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	if _, err := e.st.MeterNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, doc = owner.get("/billing")
	if got := doc.Find(`[data-testid="spend-to-date"]`).Text(); got != "€0.14" { // 24 h × €0.006 = €0.144
		t.Errorf("spend to date %q", got)
	}
	if doc.Find(`[data-testid="usage-row"]`).Length() != 1 || doc.Find(`[data-testid="invoices-empty"]`).Length() != 1 {
		t.Errorf("billing page: %s", doc.Find("main").Text())
	}
	_, doc = owner.get("/dashboard")
	if got := doc.Find(`[data-testid="dash-spend"]`).Text(); got != "€0.14" {
		t.Errorf("dashboard spend %q", got)
	}

	// Staff issue November; the owner sees the invoice and its PDF.
	clock.set(time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC))
	if res, _ := staffB.post("/admin/billing/issue", url.Values{"month": {"2026-11"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("issue: %d", res.StatusCode)
	}
	list, _, _ := e.st.ListInvoices(context.Background(), tenantID, store.Page{})
	if len(list) != 1 {
		t.Fatalf("%d invoices", len(list))
	}
	_, doc = owner.get("/billing/invoices/" + list[0].ID)
	if got := doc.Find(`[data-testid="invoice-total"]`).Text(); got != list[0].Total().String() || doc.Find(`[data-testid="invoice-line"]`).Length() != 1 {
		t.Errorf("invoice page total %q, want %s", got, list[0].Total())
	}
	res, _ = owner.get("/billing/invoices/" + list[0].ID + ".pdf")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("pdf: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	stranger := e.browser()
	stranger.signup("Strangers", "x@strangers.example")
	if res, _ := stranger.get("/billing/invoices/" + list[0].ID); res.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's invoice page: %d", res.StatusCode)
	}

	// Staff record a payment on the tenant page; a bad amount is refused.
	if res, _ := staffB.post("/admin/tenants/"+tenantID+"/payments", url.Values{"kind": {"payment"}, "amount": {"x"}, "reference": {"TR"}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad payment: %d", res.StatusCode)
	}
	if res, _ := staffB.post("/admin/tenants/"+tenantID+"/payments", url.Values{"kind": {"payment"}, "amount": {"5"}, "reference": {"TR-1"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("payment: %d", res.StatusCode)
	}
	_, doc = staffB.get("/admin/tenants/" + tenantID)
	if doc.Find(`[data-testid="payment-row"]`).Length() != 1 {
		t.Errorf("payments on the tenant page: %s", doc.Find(`[data-testid="admin-tenant-billing"]`).Text())
	}
}
