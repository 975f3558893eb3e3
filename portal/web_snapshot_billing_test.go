package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestSnapshotBillingPages prices snapshot storage per GiB on the admin
// billing page (an unknown item is refused), and the owner's billing page
// shows a ready snapshot's line in GiB and hours beside the VM's.
func TestSnapshotBillingPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	clock := &billingClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	e.st.SetClock(clock.now)
	staffB := e.staffBrowser(store.RoleAdmin)
	admin := e.staff(store.RoleAdmin)
	owner := e.browser()
	owner.signup("Snap Bill Co", "o@snapbill.example")

	_, doc := staffB.get("/admin/billing")
	if doc.Find(`select[name="item"] option[value="`+store.ItemSnapshotGiB+`"]`).Text() != "Snapshots, per GiB" {
		t.Errorf("price form items: %q", doc.Find(`select[name="item"]`).Text())
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "item", "POST", "/api/v1/admin/billing/prices", admin, map[string]any{"item": "snapshot-tib", "hourly": "0.001"})
	if res, _ := staffB.post("/admin/billing/prices", url.Values{"item": {store.ItemSnapshotGiB}, "hourly": {"0.001"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("snapshot price: %d", res.StatusCode)
	}
	_, doc = staffB.get("/admin/billing")
	if got := doc.Find(`[data-testid="price-row"]`).Text(); !strings.Contains(got, "Snapshots, per GiB") || !strings.Contains(got, "€0.001 an hour") {
		t.Errorf("price table: %q", got)
	}

	e.image("debian-12")
	ts, _, _ := e.st.ListTenants(ctx, "Snap Bill", store.Page{})
	if len(ts) != 1 {
		t.Fatalf("tenants %v", ts)
	}
	f := store.Actor{Email: "o@snapbill.example", TenantID: ts[0].ID}
	key, err := e.st.AddSSHKey(ctx, f, f.TenantID, "laptop", pubKey(t, "laptop"))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := e.st.CreateVM(ctx, f, f.TenantID, store.VMOrder{Name: "web", Plan: "nano", Image: "debian-12", SSHKeys: []string{key.ID}})
	if err != nil {
		t.Fatal(err)
	}
	runVM(t, e, vm.ID)
	snap, _, err := e.st.CreateSnapshot(ctx, f, f.TenantID, vm.ID, "daily")
	if err != nil {
		t.Fatal(err)
	}
	settleVM(t, e, vm.ID)
	if err := e.st.SnapshotTaken(ctx, snap.ID, 23<<29, store.ConsistencyStopped); err != nil { // 11.5 GiB bills 12
		t.Fatal(err)
	}
	clock.set(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	if _, err := e.st.MeterNow(ctx); err != nil {
		t.Fatal(err)
	}
	_, doc = owner.get("/billing")
	var rows []string
	doc.Find(`[data-testid="usage-row"]`).Each(func(_ int, s *goquery.Selection) {
		rows = append(rows, strings.Join(s.Find("td").Map(func(_ int, td *goquery.Selection) string { return td.Text() }), " | "))
	})
	// 12 GiB × 24 h × €0.001 = €0.288; the VM is unpriced.
	want := []string{"VM web | 24 | €0.00", "Snapshot web/daily (12 GiB × 24 h) | 24 | €0.29"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("usage rows %q, want %q", rows, want)
	}
}
