package portal

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// invalid tells whether the form marks the input called name as refused.
func invalid(doc *goquery.Document, name string) bool {
	v, _ := doc.Find(`[name="` + name + `"]`).Attr("aria-invalid")
	return v == "true"
}

func TestAdminBootSubnetForms(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.staffBrowser(store.RoleAdmin)
	operator := e.staffBrowser(store.RoleOperator)
	auditor := e.staffBrowser(store.RoleAuditor)
	customer := e.browser()
	customer.signup("Globex", "boss@globex.example")
	anonymous := e.browser()

	// The empty list says why the page matters; the nav leads here.
	res, doc := admin.get("/admin/boot-subnets")
	if res.StatusCode != http.StatusOK || !adminHas(doc, "admin-boot-subnets-empty") ||
		!strings.Contains(doc.Find(`[data-testid="admin-boot-subnets-empty"]`).Text(), "DHCP server answers only on boot subnets") {
		t.Errorf("empty list: %d", res.StatusCode)
	}
	if nav := doc.Find(`[data-testid="nav-admin-boot-subnets"]`); nav.AttrOr("href", "") != "/admin/boot-subnets" || nav.AttrOr("aria-current", "") != "page" {
		t.Errorf("nav entry: %v", nav.Length())
	}

	good := url.Values{"name": {"rack-1"}, "cidr": {"10.213.0.0/24"}, "gateway": {"10.213.0.1"}, "dns_servers": {"10.213.0.1, 9.9.9.9"},
		"range_start": {"10.213.0.100"}, "range_end": {"10.213.0.109"}, "lease_seconds": {"600"}}
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		status int
		field  string
	}{
		{"bad cidr", func(f url.Values) { f.Set("cidr", "10.213.0.0/33") }, 422, "cidr"},
		{"range outside subnet", func(f url.Values) { f.Set("range_start", "10.214.0.100") }, 422, "range_start"},
		{"range end outside subnet", func(f url.Values) { f.Set("range_end", "10.214.0.109") }, 422, "range_end"},
		{"lease not a number", func(f url.Values) { f.Set("lease_seconds", "1h") }, 422, "lease_seconds"},
		{"lease too long", func(f url.Values) { f.Set("lease_seconds", "99999999") }, 422, "lease_seconds"},
		{"bad dns", func(f url.Values) { f.Set("dns_servers", "dns.example") }, 422, "dns_servers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			f := fresh(good)
			tc.change(f)
			res, doc := admin.post("/admin/boot-subnets", f)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if !invalid(doc, tc.field) {
				t.Errorf("%s not marked invalid", tc.field)
			}
			if v := doc.Find(`[name="name"]`).AttrOr("value", ""); v != "rack-1" {
				t.Errorf("form not filled back in: name %q", v)
			}
		})
	}
	e.t = t
	for _, b := range []struct {
		who    string
		b      *browser
		status int
	}{{"operator", operator, 403}, {"auditor", auditor, 403}, {"customer", customer, 404}, {"anonymous", anonymous, 401}} {
		if res, _ := b.b.post("/admin/boot-subnets", fresh(good)); res.StatusCode != b.status {
			t.Errorf("%s create: %d, want %d", b.who, res.StatusCode, b.status)
		}
	}
	if l, _ := e.st.ListBootSubnets(ctx); len(l) != 0 {
		t.Fatalf("refused forms added boot subnets: %+v", l)
	}

	res, _ = admin.post("/admin/boot-subnets", fresh(good))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", res.StatusCode)
	}
	sn, err := e.st.GetBootSubnet(ctx, "rack-1")
	if err != nil {
		t.Fatal(err)
	}
	path := "/admin/boot-subnets/" + sn.ID
	if loc := res.Header.Get("Location"); loc != path {
		t.Errorf("added, sent to %q", loc)
	}
	if sn.DNSServers != "10.213.0.1,9.9.9.9" || sn.LeaseSeconds != 600 || sn.DynamicStart != "10.213.0.100" {
		t.Errorf("added: %+v", sn)
	}
	_, doc = operator.get("/admin/boot-subnets")
	row := doc.Find(`[data-testid="admin-boot-subnet-row"]`)
	if row.Length() != 1 || !strings.Contains(row.Text(), "rack-1") || !strings.Contains(row.Text(), "10.213.0.0/24") ||
		!strings.Contains(row.Text(), "10 min") || row.Find(`[data-testid="admin-boot-subnet-usage"]`).AttrOr("data-free", "") != "10" {
		t.Errorf("list row: %q", row.Text())
	}
	if adminHas(doc, "admin-boot-subnet-create-form") || !adminHas(doc, "admin-readonly-note") {
		t.Error("operator is offered the create form")
	}

	// Reservations through the form: refusals inline, then one added.
	reservations := path + "/reservations"
	for _, tc := range []struct {
		name       string
		form       url.Values
		status     int
		field, msg string
	}{
		{"inside the dynamic range", url.Values{"mac": {"52:54:00:aa:00:01"}, "ip": {"10.213.0.105"}}, 422, "ip", "dynamic range"},
		{"outside the subnet", url.Values{"mac": {"52:54:00:aa:00:01"}, "ip": {"10.214.0.5"}}, 422, "ip", "10.213.0.0/24"},
		{"bad mac", url.Values{"mac": {"52:54:00:aa"}, "ip": {"10.213.0.20"}}, 422, "mac", "MAC address like"},
		{"bad hostname", url.Values{"mac": {"52:54:00:aa:00:01"}, "ip": {"10.213.0.20"}, "hostname": {"node 1"}}, 422, "hostname", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			res, doc := admin.post(reservations, tc.form)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if !invalid(doc, tc.field) || !strings.Contains(doc.Find(`[data-testid="error-`+tc.field+`"]`).Text(), tc.msg) {
				t.Errorf("%s not marked invalid with %q", tc.field, tc.msg)
			}
			if v := doc.Find(`[name="mac"]`).AttrOr("value", ""); v != tc.form.Get("mac") {
				t.Errorf("mac not filled back in: %q", v)
			}
		})
	}
	e.t = t
	for _, b := range []struct {
		who    string
		b      *browser
		status int
	}{{"operator", operator, 403}, {"auditor", auditor, 403}, {"customer", customer, 404}, {"anonymous", anonymous, 401}} {
		if res, _ := b.b.post(reservations, url.Values{"mac": {"52:54:00:aa:00:01"}, "ip": {"10.213.0.20"}}); res.StatusCode != b.status {
			t.Errorf("%s reserve: %d, want %d", b.who, res.StatusCode, b.status)
		}
	}
	if res, _ := admin.post("/admin/boot-subnets/nope/reservations", url.Values{"mac": {"52:54:00:aa:00:01"}, "ip": {"10.213.0.20"}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("reserve in unknown subnet: %d", res.StatusCode)
	}
	if l, _ := e.st.ListReservations(ctx, sn.ID); len(l) != 0 {
		t.Fatalf("refused forms added reservations: %+v", l)
	}
	res, _ = admin.post(reservations, url.Values{"mac": {"52-54-00-AA-00-01"}, "ip": {"10.213.0.20"}, "hostname": {"node-1"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
		t.Fatalf("reserve: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, doc = admin.post(reservations, url.Values{"mac": {"52:54:00:aa:00:01"}, "ip": {"10.213.0.21"}})
	if res.StatusCode != http.StatusConflict || !invalid(doc, "mac") {
		t.Errorf("duplicate mac: %d", res.StatusCode)
	}

	// The page lists the reservation and the leases held now, not run-out ones.
	now := time.Now()
	for _, l := range []struct {
		mac string
		at  time.Time
	}{{"52:54:00:aa:00:01", now}, {"52:54:00:bb:00:01", now}, {"52:54:00:bb:00:02", now.Add(-2 * time.Hour)}} {
		if _, err := e.st.Lease(ctx, sn.ID, l.mac, netip.Addr{}, l.at); err != nil {
			t.Fatal(err)
		}
	}
	res, doc = auditor.get(path)
	if res.StatusCode != http.StatusOK || !adminHas(doc, "admin-boot-subnet-page") {
		t.Fatalf("page: %d", res.StatusCode)
	}
	r := doc.Find(`[data-testid="admin-reservation-row"][data-mac="52:54:00:aa:00:01"]`)
	if r.Length() != 1 || !strings.Contains(r.Text(), "10.213.0.20") || !strings.Contains(r.Text(), "node-1") {
		t.Errorf("reservation row: %q", r.Text())
	}
	var leased []string
	doc.Find(`[data-testid="admin-lease-row"]`).Each(func(_ int, s *goquery.Selection) { leased = append(leased, s.AttrOr("data-ip", "")) })
	if strings.Join(leased, " ") != "10.213.0.20 10.213.0.100" {
		t.Errorf("leases shown: %v", leased)
	}
	if exp := doc.Find(`[data-testid="admin-lease-expires"]`).First().Text(); !strings.HasSuffix(exp, "UTC") {
		t.Errorf("lease expiry shown as %q", exp)
	}
	if doc.Find(`[data-testid="admin-lease-row"][data-ip="10.213.0.20"] [data-testid="admin-lease-reserved"]`).Length() != 1 {
		t.Error("the reserved lease is not marked")
	}
	if u := doc.Find(`[data-testid="boot-subnet-usage"]`); u.AttrOr("data-used", "") != "1" || u.AttrOr("data-free", "") != "9" {
		t.Errorf("usage: used %q free %q", u.AttrOr("data-used", ""), u.AttrOr("data-free", ""))
	}
	if n := adminPostFormCount(doc); n != 0 {
		t.Errorf("auditor sees %d forms", n)
	}
	if res, _ := customer.get(path); res.StatusCode != http.StatusNotFound {
		t.Errorf("customer page: %d", res.StatusCode)
	}
	if res, _ := anonymous.get(path); res.StatusCode/100 != 3 || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
		t.Errorf("anonymous page: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := admin.get("/admin/boot-subnets/nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: %d", res.StatusCode)
	}
	_, doc = admin.get(path)
	for _, f := range []string{"admin-reservation-create-form", "admin-reservation-delete-form", "admin-boot-subnet-delete-form"} {
		if !adminHas(doc, f) {
			t.Errorf("admin lacks %s", f)
		}
	}

	// Removing the reservation.
	unreserve := reservations + "/" + url.PathEscape("52:54:00:aa:00:01") + "/delete"
	for _, b := range []struct {
		who    string
		b      *browser
		status int
	}{{"operator", operator, 403}, {"customer", customer, 404}, {"anonymous", anonymous, 401}} {
		if res, _ := b.b.post(unreserve, nil); res.StatusCode != b.status {
			t.Errorf("%s unreserve: %d, want %d", b.who, res.StatusCode, b.status)
		}
	}
	if res, _ := admin.post(unreserve, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("unreserve: %d", res.StatusCode)
	}
	if l, _ := e.st.ListReservations(ctx, sn.ID); len(l) != 0 {
		t.Errorf("reservation still there: %+v", l)
	}
	if res, _ := admin.post(unreserve, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("unreserve twice: %d", res.StatusCode)
	}

	// Delete needs the confirmation.
	del := path + "/delete"
	if res, _ := operator.post(del, url.Values{"confirm": {"on"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator delete: %d", res.StatusCode)
	}
	if res, _ := admin.post(del, nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != path {
		t.Errorf("unconfirmed delete: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.st.GetBootSubnet(ctx, sn.ID); err != nil {
		t.Fatalf("deleted without confirmation: %v", err)
	}
	if res, _ := admin.post(del, url.Values{"confirm": {"on"}}); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/boot-subnets" {
		t.Errorf("delete: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.st.GetBootSubnet(ctx, sn.ID); err == nil {
		t.Error("boot subnet not deleted")
	}
	if res, _ := admin.post(del, url.Values{"confirm": {"on"}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete unknown: %d", res.StatusCode)
	}
}

// adminPostFormCount counts the POST forms of a page body.
func adminPostFormCount(doc *goquery.Document) int {
	return doc.Find(`main form`).FilterFunction(func(_ int, s *goquery.Selection) bool {
		return strings.EqualFold(s.AttrOr("method", ""), "post")
	}).Length()
}

// TestAdminBootSubnetWebFlow adds a boot subnet and a reservation through
// the forms, following the redirects, and finds both listed.
func TestAdminBootSubnetWebFlow(t *testing.T) {
	e := newEnv(t)
	admin := e.staffBrowser(store.RoleAdmin)
	follow := func(res *http.Response) *goquery.Document {
		t.Helper()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want a redirect", res.StatusCode)
		}
		r, doc := admin.get(res.Header.Get("Location"))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", res.Header.Get("Location"), r.StatusCode)
		}
		return doc
	}
	res, _ := admin.post("/admin/boot-subnets", url.Values{"name": {"lab"}, "cidr": {"192.168.77.0/24"}, "range_start": {"192.168.77.50"}, "range_end": {"192.168.77.99"}})
	doc := follow(res)
	if flash := doc.Find(`[data-testid="flash"]`).Text(); !strings.Contains(flash, "lab added") {
		t.Errorf("flash after add: %q", flash)
	}
	if lt := doc.Find(`[data-testid="boot-subnet-lease-time"]`).Text(); lt != "1 h" {
		t.Errorf("default lease time shown as %q", lt)
	}
	action, _ := doc.Find(`[data-testid="admin-reservation-create-form"]`).Attr("action")
	res, _ = admin.post(action, url.Values{"mac": {"52:54:00:12:34:56"}, "ip": {"192.168.77.10"}, "hostname": {"pxe-1"}})
	doc = follow(res)
	r := doc.Find(`[data-testid="admin-reservation-row"]`)
	if r.Length() != 1 || r.AttrOr("data-mac", "") != "52:54:00:12:34:56" || r.Find(`[data-testid="admin-reservation-ip"]`).Text() != "192.168.77.10" {
		t.Errorf("reservation listed: %d %q", r.Length(), r.Text())
	}
	_, doc = admin.get("/admin/boot-subnets")
	row := doc.Find(`[data-testid="admin-boot-subnet-row"]`)
	if row.Length() != 1 || row.Find(`[data-testid="admin-boot-subnet-link"]`).Text() != "lab" ||
		row.Find(`[data-testid="admin-boot-subnet-reservations"]`).Text() != "1" || row.Find(`[data-testid="admin-boot-subnet-usage"]`).AttrOr("data-free", "") != "50" {
		t.Errorf("list row: %q", row.Text())
	}
}
