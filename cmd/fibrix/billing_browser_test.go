package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestBrowserBilling prices a plan on the staff billing page in headless
// Chromium, shows that price and the order total to a customer on the order
// form, orders a VM, and, once the month has been invoiced, opens the
// customer's invoice page and its PDF. A screenshot is saved at each step.
func TestBrowserBilling(t *testing.T) {
	exe := chromium(t)
	bin := buildBinary(t)
	libvirttest.Ensure(t)
	dataDir := t.TempDir()
	in := serve(t, bin, dataDir, "--watch-interval", "1s")
	addHost(t, dataDir)
	shots := artifacts(t)

	staff := api{t: t, base: in.URL}
	var sess struct{ Token string }
	staff.must("POST", "/auth/login", map[string]string{"email": in.Email, "password": in.Password}, &sess, 200)
	staff.token = sess.Token
	imagePath := filepath.Join(t.TempDir(), "debian-12.qcow2")
	if err := os.WriteFile(imagePath, []byte("a small stand-in image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a small stand-in image\n"))
	staff.must("POST", "/admin/images", map[string]any{"name": "debian-12", "os": "Debian", "version": "12",
		"source_url": "file://" + imagePath, "checksum": "sha256:" + hex.EncodeToString(sum[:])}, nil, 201)
	customer := api{t: t, base: in.URL}
	customer.must("POST", "/auth/signup", map[string]string{"tenant": "Billed Ltd", "email": "o@billed.example", "password": "correct horse battery"}, &sess, 201)
	customer.token = sess.Token
	customer.must("POST", "/ssh-keys", map[string]string{"name": "laptop", "public_key": authorizedKey(t, "o@laptop")}, nil, 201)

	ctx := browserContext(t, exe)
	tr := &tour{t: t, ctx: ctx, dir: shots, prefix: "billing"}
	shot, run, text := tr.shot, tr.run, tr.text
	login := func(email, password string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(in.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
			chromedp.SendKeys(chromedp.CSS(`#email`), email),
			chromedp.SendKeys(chromedp.CSS(`#password`), password),
			chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=logout-button]`)),
		)
	}

	// Staff set the currency, VAT and the price of the small plan.
	settings := `[data-testid=billing-settings-form] `
	prices := `[data-testid=price-form] `
	run("staff prices a plan",
		login(in.Email, in.Password),
		chromedp.Navigate(in.URL+"/admin/billing"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=prices-empty]`)),
		chromedp.SetValue(chromedp.CSS(settings+`input[name=currency]`), "EUR"),
		chromedp.SetValue(chromedp.CSS(settings+`input[name=vat_rate]`), "21"),
		chromedp.Click(chromedp.CSS(`[data-testid=billing-settings-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash][data-kind=success]`)),
		chromedp.SetValue(chromedp.CSS(prices+`select[name=item]`), store.PlanItem("plan-small")),
		chromedp.SendKeys(chromedp.CSS(prices+`input[name=hourly]`), "0.012"),
		chromedp.SendKeys(chromedp.CSS(prices+`input[name=monthly_cap]`), "8.00"),
		chromedp.Click(chromedp.CSS(`[data-testid=price-save]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=price-row]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash][data-kind=success]`)),
		shot("staff-prices"),
	)
	if row := text(`[data-testid=price-row]`); !strings.Contains(row, "small") || !strings.Contains(row, "€0.012 an hour, up to €8.00 a month") {
		t.Errorf("price row reads %q", row)
	}
	run("staff signs out", chromedp.Click(chromedp.CSS(`[data-testid=logout-button]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)))

	// The customer sees the price on the plan card and the order's total.
	small := `[data-testid=plan-card][data-plan=plan-small] `
	run("order form",
		login("o@billed.example", "correct horse battery"),
		chromedp.Navigate(in.URL+"/vms/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-new-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "web-1"),
		chromedp.Click(chromedp.CSS(small+`input[name=plan]`)),
	)
	if price := text(small + `[data-testid=plan-price]`); price != "€0.012 an hour, up to €8.00 a month" {
		t.Errorf("small plan card shows %q", price)
	}
	if total := text(`#order-total`); total != "up to €9.68 a month, VAT included" {
		t.Errorf("order total after choosing small: %q", total)
	}
	// An unpriced plan says so in the total.
	run("choose nano", chromedp.Click(chromedp.CSS(`[data-testid=plan-card][data-plan=plan-nano] input[name=plan]`)))
	if total := text(`#order-total`); total != "not priced yet" {
		t.Errorf("order total after choosing an unpriced plan: %q", total)
	}
	opt, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#image option:nth-child(2)`), "value"))
	if err != nil {
		t.Fatal(err)
	}
	run("order",
		chromedp.Click(chromedp.CSS(small+`input[name=plan]`)),
		chromedp.SetValue(chromedp.CSS(`#image`), opt.Value),
		shot("order-form"),
	)
	ordered := time.Now()
	run("order",
		chromedp.Click(chromedp.CSS(`[data-testid=vm-create-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-status] [data-testid=state-badge][data-state=running]`)),
	)
	running := time.Now()
	run("dashboard",
		chromedp.Navigate(in.URL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=spend-card]`)),
		shot("dashboard-spend"),
	)
	forecast := text(`[data-testid=dash-forecast]`)

	// The month ends: the month-end run (the store on the instance's
	// database, its clock an hour into the next month) issues the invoice.
	month := store.MonthOf(running)
	_, end, err := store.MonthBounds(month)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st.SetClock(func() time.Time { return end.Add(time.Hour) })
	rep, err := st.IssueInvoices(context.Background(), store.Actor{Email: "month-end"}, month, "")
	st.Close()
	if err != nil || rep.Issued != 1 {
		t.Fatalf("issue %s: %+v %v", month, rep, err)
	}
	var list struct {
		Items []struct {
			ID     string `json:"id"`
			Number string `json:"number"`
			Total  string `json:"total"`
		} `json:"items"`
	}
	customer.must("GET", "/billing/invoices", nil, &list, 200)
	if len(list.Items) != 1 {
		t.Fatalf("invoices through the API: %+v", list.Items)
	}
	inv := list.Items[0]
	// The VM ran from its order until the month's end: started hours at
	// €0.012 (1.2 cents, half rounded up), at most €8.00, then 21 % VAT.
	want := func(from time.Time) (sub, total string) {
		hours := int64(end.Sub(from.Truncate(time.Hour)) / time.Hour)
		cents := min((hours*12+5)/10, 800)
		cents += (cents*21 + 50) / 100
		sc := min((hours*12+5)/10, 800)
		return fmt.Sprintf("€%d.%02d", sc/100, sc%100), fmt.Sprintf("€%d.%02d", cents/100, cents%100)
	}
	subA, totalA := want(ordered)
	subB, totalB := want(running)
	run("billing page",
		chromedp.Navigate(in.URL+"/billing"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invoice-row]`)),
		shot("billing"),
		chromedp.Click(chromedp.CSS(`[data-testid=invoice-row] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invoice-total]`)),
		shot("invoice"),
	)
	if title := text(`[data-testid=invoice-title]`); title != "Invoice "+inv.Number {
		t.Errorf("invoice page title %q, want number %s", title, inv.Number)
	}
	if line := text(`[data-testid=invoice-line]`); !strings.Contains(line, "web-1") {
		t.Errorf("invoice line %q does not name the VM", line)
	}
	sub, total := text(`[data-testid=invoice-subtotal]`), text(`[data-testid=invoice-total]`)
	if forecast != sub {
		t.Errorf("the dashboard forecast %s is not the invoice's subtotal %s", forecast, sub)
	}
	if (sub != subA || total != totalA) && (sub != subB || total != totalB) {
		t.Errorf("invoice reads subtotal %s, total %s; want %s and %s for the hours from the order to the month's end", sub, total, subA, totalA)
	}
	if total != "€"+inv.Total {
		t.Errorf("invoice page total %q, API total %s", total, inv.Total)
	}
	// The PDF link downloads a PDF with the browser's own session.
	pdf, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.querySelector('[data-testid=invoice-pdf]').href)
		.then(r => r.text().then(b => r.status + " " + r.headers.get("content-type") + " " + b.slice(0, 5)))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if pdf != "200 application/pdf %PDF-" {
		t.Errorf("the invoice's PDF link answers %q", pdf)
	}
}

// tour drives one browser context through a test: shot saves a numbered
// full-page screenshot, run does steps (saving a screenshot on failure) and
// text reads an element's text with its spaces collapsed.
type tour struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	prefix string
	step   int
}

func (tr *tour) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		tr.step++
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tr.dir, fmt.Sprintf("%s-%02d-%s.png", tr.prefix, tr.step, name)), buf, 0o644)
	})
}

func (tr *tour) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tr.t.Helper()
	if err := chromedp.Do(tr.ctx, actions...); err != nil {
		_ = chromedp.Do(tr.ctx, tr.shot("failed"))
		tr.t.Fatalf("%s: %v", what, err)
	}
}

func (tr *tour) text(sel string) string {
	tr.t.Helper()
	s, err := chromedp.Run(tr.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tr.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}
