package portal

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// billingClock is the store's clock in these tests.
type billingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *billingClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *billingClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// runVM plays the provisioner: the VM is running from the clock's time.
func runVM(t testing.TB, e *env, vmID string) {
	t.Helper()
	ctx := context.Background()
	for {
		vm, ok, err := e.st.ClaimVM(ctx, "test-worker", time.Minute)
		if err != nil || !ok {
			t.Fatalf("claim %s: %v %v", vmID, ok, err)
		}
		if vm.ID == vmID {
			break
		}
	}
	if err := e.st.SetVMState(ctx, vmID, "test-worker", store.VMRunning, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishWork(ctx, vmID, "test-worker", true, 0); err != nil {
		t.Fatal(err)
	}
}

// TestBillingAPI walks the storefront through the API: staff price a plan,
// a customer sees the price, runs a VM for part of a month, sees usage,
// gets an invoice (JSON and PDF) that nobody else can read, staff export,
// credit and record a payment, and a credit limit refuses an order.
func TestBillingAPI(t *testing.T) {
	e := newEnv(t)
	clock := &billingClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	e.st.SetClock(clock.now)
	admin, auditor := e.staff(store.RoleAdmin), e.staff(store.RoleAuditor)
	cust := e.customer("Shopper", "s@shop.example")
	other := e.customer("Nosy Billing", "n@nosy.example")
	member := e.member(cust, "m@shop.example", store.RoleMember)
	e.image("debian-12")
	key := e.addKey(cust, "laptop")
	tenantID, _ := e.account(cust)
	plans := e.want(http.StatusOK, "GET", "/api/v1/plans", cust, nil)
	var nanoID string
	for _, p := range items(plans) {
		if obj(p)["name"] == "nano" {
			nanoID = obj(p)["id"].(string)
			if obj(p)["price"] != nil {
				t.Errorf("an unpriced plan shows a price: %v", p)
			}
		}
	}

	// Staff set the VAT and a price; refusals change nothing.
	e.want(http.StatusOK, "PUT", "/api/v1/admin/billing/settings", admin, map[string]string{"currency": "EUR", "vat_rate": "21"})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "vat_rate", "PUT", "/api/v1/admin/billing/settings", admin, map[string]string{"currency": "EUR", "vat_rate": "lots"})
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/admin/billing/prices", auditor, map[string]any{"item": "plan:" + nanoID, "hourly": "0.006"})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "hourly", "POST", "/api/v1/admin/billing/prices", admin, map[string]any{"item": "plan:" + nanoID, "hourly": "0.0000001"})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "monthly", "POST", "/api/v1/admin/billing/prices", admin, map[string]any{"item": "plan:" + nanoID, "hourly": "0.006", "monthly_cap": "40"})
	if l := e.want(http.StatusOK, "GET", "/api/v1/admin/billing/prices", auditor, nil); len(items(l)) != 0 {
		t.Fatalf("refused prices kept: %v", l)
	}
	e.want(http.StatusCreated, "POST", "/api/v1/admin/billing/prices", admin, map[string]any{"item": "plan:" + nanoID, "hourly": "0.006", "monthly_cap": "4.00"})
	for _, p := range items(e.want(http.StatusOK, "GET", "/api/v1/plans", cust, nil)) {
		if obj(p)["name"] == "nano" {
			pr := obj(obj(p)["price"])
			if pr["hourly"] != "0.006" || pr["monthly_cap"] != "4.00" || pr["currency"] != "EUR" || pr["bills_when_stopped"] != true {
				t.Errorf("nano's price %v", pr)
			}
		}
	}

	// A VM runs from 20 November 10:00 to the end of the month.
	vm := e.order(cust, "web", "nano", "debian-12", key)
	runVM(t, e, vm)
	clock.set(time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC))
	if _, err := e.st.MeterNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	u := e.want(http.StatusOK, "GET", "/api/v1/billing/usage", cust, nil)
	// 121 started hours × €0.006 = €0.726 → €0.73; the forecast is the
	// whole of November as the invoice will bill it (254 h → €1.524 →
	// €1.52), under the cap.
	if u["month"] != "2026-11" || u["subtotal"] != "0.73" || u["forecast"] != "1.52" || u["vat_rate"] != "21.00" || len(u["lines"].([]any)) != 1 {
		t.Errorf("usage %v", u)
	}
	if b := obj(u["balance"]); b["balance"] != "-0.88" || b["overdue"] != true { // €0.73 + 21 % VAT
		t.Errorf("balance %v", b)
	}
	e.wantErr(http.StatusForbidden, "forbidden", "", "GET", "/api/v1/billing/usage", member, nil)

	// The month ends; staff issue (twice: once counts).
	clock.set(time.Date(2026, 12, 1, 0, 10, 0, 0, time.UTC))
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "month", "POST", "/api/v1/admin/billing/invoices/issue", admin, map[string]string{"month": "2026-12"})
	rep := e.want(http.StatusOK, "POST", "/api/v1/admin/billing/invoices/issue", admin, map[string]string{"month": "2026-11"})
	if rep["issued"] != float64(1) {
		t.Errorf("issue report %v", rep)
	}
	if rep := e.want(http.StatusOK, "POST", "/api/v1/admin/billing/invoices/issue", admin, map[string]string{"month": "2026-11"}); rep["issued"] != float64(0) || rep["already_invoiced"] != float64(1) {
		t.Errorf("second issue report %v", rep)
	}
	list := e.want(http.StatusOK, "GET", "/api/v1/billing/invoices", cust, nil)
	if len(items(list)) != 1 {
		t.Fatalf("invoices %v", list)
	}
	invID := obj(items(list)[0])["id"].(string)
	inv := e.want(http.StatusOK, "GET", "/api/v1/billing/invoices/"+invID, cust, nil)
	// 20 Nov 10:00 → 1 Dec: 254 h × €0.006 = €1.524 → €1.52; VAT €0.32.
	if inv["number"] != "FX-000001" || inv["subtotal"] != "1.52" || inv["vat"] != "0.32" || inv["total"] != "1.84" || len(inv["lines"].([]any)) != 1 {
		t.Errorf("invoice %v", inv)
	}
	code, pdf := e.raw("GET", "/api/v1/billing/invoices/"+invID+".pdf", cust, "", "")
	if code != http.StatusOK || !strings.HasPrefix(pdf, "%PDF-") || len(pdf) < 800 {
		t.Errorf("pdf: %d, %d bytes, starts %q", code, len(pdf), pdf[:min(len(pdf), 8)])
	}
	// Nobody else reads it.
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/billing/invoices/"+invID, other, nil)
	if code, _ := e.raw("GET", "/api/v1/billing/invoices/"+invID+".pdf", other, "", ""); code != http.StatusNotFound {
		t.Errorf("another tenant's pdf: %d", code)
	}
	if l := e.want(http.StatusOK, "GET", "/api/v1/billing/invoices", other, nil); len(items(l)) != 0 {
		t.Errorf("another tenant lists %v", l)
	}
	e.wantErr(http.StatusForbidden, "forbidden", "", "GET", "/api/v1/billing/invoices/"+invID, member, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/admin/billing/invoices", cust, nil)

	// Staff: all invoices, CSV, credit note, payment, overdue.
	if l := e.want(http.StatusOK, "GET", "/api/v1/admin/billing/invoices?tenant_id="+tenantID, auditor, nil); len(items(l)) != 1 {
		t.Errorf("staff list %v", l)
	}
	code, csv := e.raw("GET", "/api/v1/admin/billing/export?month=2026-11", auditor, "", "")
	if code != http.StatusOK || !strings.Contains(csv, "FX-000001,invoice,2026-12-01,2026-11,"+tenantID+",Shopper,EUR,1.52,21.00,0.32,1.84") {
		t.Errorf("csv %d:\n%s", code, csv)
	}
	if od := e.want(http.StatusOK, "GET", "/api/v1/admin/billing/overdue", auditor, nil); len(items(od)) != 1 || obj(items(od)[0])["tenant_id"] != tenantID {
		t.Errorf("overdue %v", od)
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "amount", "POST", "/api/v1/admin/billing/invoices/"+invID+"/credit-notes", admin, map[string]string{"amount": "9.00", "reason": "x"})
	cn := e.want(http.StatusCreated, "POST", "/api/v1/admin/billing/invoices/"+invID+"/credit-notes", admin, map[string]string{"amount": "0.52", "reason": "outage"})
	if cn["number"] != "FX-000002" || cn["total"] != "-0.63" {
		t.Errorf("credit note %v", cn)
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "reference", "POST", "/api/v1/admin/tenants/"+tenantID+"/payments", admin, map[string]string{"kind": "payment", "amount": "1.00"})
	e.want(http.StatusCreated, "POST", "/api/v1/admin/tenants/"+tenantID+"/payments", admin, map[string]string{"kind": "payment", "amount": "1.21", "reference": "TR-77"})
	tb := e.want(http.StatusOK, "GET", "/api/v1/admin/tenants/"+tenantID+"/billing", auditor, nil)
	if b := obj(tb["balance"]); b["balance"] != "0.00" || b["overdue"] != false || len(tb["payments"].([]any)) != 1 {
		t.Errorf("tenant billing %v", tb)
	}

	// A credit limit of €1.00: another nano month (€4.00 + VAT) is refused.
	e.want(http.StatusOK, "PUT", "/api/v1/admin/tenants/"+tenantID+"/credit-limit", admin, map[string]any{"credit_limit": "1.00"})
	code, body := e.api("POST", "/api/v1/vms", cust, map[string]any{"name": "more", "plan": "nano", "image": "debian-12", "ssh_keys": []string{key}})
	if c, _ := apiErr(body); code != http.StatusPaymentRequired || c != "credit_limit" || !strings.Contains(obj(body["error"])["message"].(string), "over your €1.00 credit limit") {
		t.Errorf("order over the limit: %d %v", code, body)
	}
	e.want(http.StatusOK, "PUT", "/api/v1/admin/tenants/"+tenantID+"/credit-limit", admin, map[string]any{"credit_limit": nil})
	e.order(cust, "more", "nano", "debian-12", key)
}
