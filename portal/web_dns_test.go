package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// dnsRecords lists all of a tenant's records straight from the store.
func (sh *shop) dnsRecords(tenantID string) []store.DNSRecord {
	sh.e.t.Helper()
	recs, _, err := sh.e.st.ListDNSRecords(context.Background(), tenantID, store.Page{PerPage: store.MaxPerPage})
	if err != nil {
		sh.e.t.Fatal(err)
	}
	return recs
}

// addDNS adds a record through the form and fails unless it was accepted.
func (sh *shop) addDNS(b *browser, form url.Values) {
	sh.e.t.Helper()
	res, doc := b.post("/dns/records", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/dns" {
		sh.e.t.Fatalf("add record %v: %d %s", form, res.StatusCode, doc.Find("main").Text())
	}
}

func textOf(doc *goquery.Document, sel string) string { return strings.TrimSpace(doc.Find(sel).Text()) }

// formsHaveCSRF checks that every POST form of a page carries the token.
func formsHaveCSRF(t *testing.T, doc *goquery.Document) {
	t.Helper()
	doc.Find(`form[method="post"]`).Each(func(_ int, f *goquery.Selection) {
		if v, _ := f.Find(`input[name="_csrf"]`).Attr("value"); v == "" {
			act, _ := f.Attr("action")
			t.Errorf("form %s has no CSRF field", act)
		}
	})
}

func TestWebDNSPage(t *testing.T) {
	sh := newShop(t)

	t.Run("empty state", func(t *testing.T) {
		sh.e.t = t
		res, doc := sh.owner.get("/dns")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		empty := textOf(doc, `[data-testid="empty-state"]`)
		if !strings.Contains(empty, "Your VMs are published as <vm>.acme.cloud.internal; add extra records here") {
			t.Errorf("empty state: %q", empty)
		}
		if doc.Find(`[data-testid="dns-table"]`).Length() != 0 {
			t.Error("a table without records")
		}
		if doc.Find(`[data-testid="dns-add-form"]`).Length() != 1 {
			t.Error("no add form for the owner")
		}
		if doc.Find(`[data-testid="nav-dns"][aria-current="page"]`).Length() != 1 {
			t.Error("DNS is not the current navigation entry")
		}
		var types []string
		doc.Find(`select[name="type"] option`).Each(func(_ int, o *goquery.Selection) { types = append(types, o.AttrOr("value", "")) })
		if strings.Join(types, ",") != "A,AAAA,CNAME,TXT,MX" {
			t.Errorf("type options %v", types)
		}
		formsHaveCSRF(t, doc)
	})

	sh.e.t = t
	sh.addDNS(sh.owner, url.Values{"name": {"www"}, "type": {"A"}, "value": {"192.0.2.7"}})
	sh.addDNS(sh.owner, url.Values{"name": {"@"}, "type": {"MX"}, "value": {"Mail.Example.com"}, "ttl": {"300"}, "priority": {"10"}})

	t.Run("records listed", func(t *testing.T) {
		sh.e.t = t
		_, doc := sh.owner.get("/dns")
		if f := textOf(doc, `[data-testid="flash"]`); !strings.Contains(f, "MX record for acme.cloud.internal") {
			t.Errorf("flash %q", f)
		}
		rows := doc.Find(`[data-testid="dns-row"]`)
		if rows.Length() != 2 || doc.Find(`[data-testid="empty-state"]`).Length() != 0 {
			t.Fatalf("%d rows", rows.Length())
		}
		want := [][]string{ // ordered by name: "@" before "www"
			{"@", "acme.cloud.internal", "MX", "mail.example.com.", "300 s", "10"},
			{"www", "www.acme.cloud.internal", "A", "192.0.2.7", "3600 s", "—"},
		}
		rows.Each(func(i int, r *goquery.Selection) {
			got := []string{}
			for _, id := range []string{"dns-name", "dns-fqdn", "dns-type", "dns-value", "dns-ttl", "dns-priority"} {
				got = append(got, strings.TrimSpace(r.Find(`[data-testid="`+id+`"]`).Text()))
			}
			if strings.Join(got, "|") != strings.Join(want[i], "|") {
				t.Errorf("row %d: %q, want %q", i, got, want[i])
			}
			if !strings.Contains(r.Text(), "owner@acme.example") {
				t.Errorf("row %d does not say who added it", i)
			}
		})
		if doc.Find(`[data-testid="dns-delete-form"]`).Length() != 2 {
			t.Error("no delete forms")
		}
		formsHaveCSRF(t, doc)
	})

	t.Run("pagination", func(t *testing.T) {
		sh.e.t = t
		_, doc := sh.owner.get("/dns?per_page=1&page=2")
		if got := textOf(doc, `[data-testid="dns-name"]`); got != "www" {
			t.Errorf("page 2 shows %q", got)
		}
		if got := textOf(doc, `.pager-summary`); got != "Showing 2–2 of 2" {
			t.Errorf("summary %q", got)
		}
		if doc.Find(`[data-testid="pager-prev"]`).Length() != 1 {
			t.Error("no link to the previous page")
		}
	})
}

func TestWebDNSRecordCreateRefusals(t *testing.T) {
	sh := newShop(t)
	sh.addDNS(sh.owner, url.Values{"name": {"dup"}, "type": {"A"}, "value": {"192.0.2.9"}})

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string // "" is the form as a whole
	}{
		{"A with IPv6", url.Values{"name": {"x"}, "type": {"A"}, "value": {"2001:db8::1"}}, http.StatusUnprocessableEntity, "value"},
		{"CNAME to a bare label", url.Values{"name": {"x"}, "type": {"CNAME"}, "value": {"localhost"}}, http.StatusUnprocessableEntity, "value"},
		{"bad name", url.Values{"name": {"no spaces"}, "type": {"A"}, "value": {"192.0.2.1"}}, http.StatusUnprocessableEntity, "name"},
		{"bad type", url.Values{"name": {"x"}, "type": {"SRV"}, "value": {"192.0.2.1"}}, http.StatusUnprocessableEntity, "type"},
		{"ttl not a number", url.Values{"name": {"x"}, "type": {"A"}, "value": {"192.0.2.1"}, "ttl": {"soon"}}, http.StatusUnprocessableEntity, "ttl"},
		{"ttl too short", url.Values{"name": {"x"}, "type": {"A"}, "value": {"192.0.2.1"}, "ttl": {"5"}}, http.StatusUnprocessableEntity, "ttl"},
		{"priority on A", url.Values{"name": {"x"}, "type": {"A"}, "value": {"192.0.2.1"}, "priority": {"5"}}, http.StatusUnprocessableEntity, "priority"},
		{"duplicate", url.Values{"name": {"dup"}, "type": {"A"}, "value": {"192.0.2.9"}}, http.StatusConflict, "value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh.e.t = t
			res, doc := sh.owner.post("/dns/records", tc.form)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, doc.Find("main").Text())
			}
			sel := `[data-testid="form-error"]`
			if tc.field != "" {
				sel = `[data-testid="error-` + tc.field + `"]`
			}
			if textOf(doc, sel) == "" {
				t.Errorf("no inline error at %s", sel)
			}
			// The form keeps what was typed.
			if v, _ := doc.Find(`#dns-value`).Attr("value"); v != tc.form.Get("value") {
				t.Errorf("value field %q", v)
			}
			if v, _ := doc.Find(`#dns-type option[selected]`).Attr("value"); v != strings.ToUpper(tc.form.Get("type")) && tc.field != "type" {
				t.Errorf("type %q not kept", v)
			}
			formsHaveCSRF(t, doc)
			if n := len(sh.dnsRecords(sh.tenant)); n != 1 {
				t.Errorf("%d records after a refusal", n)
			}
		})
	}
}

func TestWebDNSRecordLimit(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	for i := range store.MaxDNSRecordsPerTenant {
		if _, err := sh.e.st.CreateDNSRecord(ctx, store.Actor{Email: "test"}, sh.tenant, store.DNSRecordInput{
			Name: "h" + itoa(i), Type: store.DNSTypeA, Value: "192.0.2.1",
		}); err != nil {
			t.Fatal(err)
		}
	}
	_, doc := sh.owner.get("/dns")
	if doc.Find(`[data-testid="dns-limit-full"]`).Length() != 1 || doc.Find(`[data-testid="dns-add-form"]`).Length() != 0 {
		t.Error("the full page still offers the add form")
	}
	res, doc := sh.owner.post("/dns/records", url.Values{"name": {"more"}, "type": {"A"}, "value": {"192.0.2.2"}})
	if res.StatusCode/100 != 4 || !strings.Contains(doc.Find("main").Text(), "the most allowed") {
		t.Errorf("over the limit: %d %s", res.StatusCode, doc.Find("main").Text())
	}
	if n := len(sh.dnsRecords(sh.tenant)); n != store.MaxDNSRecordsPerTenant {
		t.Errorf("%d records", n)
	}
}

func TestWebDNSRecordDelete(t *testing.T) {
	sh := newShop(t)
	sh.addDNS(sh.owner, url.Values{"name": {"www"}, "type": {"A"}, "value": {"192.0.2.7"}})
	id := sh.dnsRecords(sh.tenant)[0].ID
	rival, rivalTenant := sh.signup("Rival", "r@rival.example")
	sh.addDNS(rival, url.Values{"name": {"www"}, "type": {"A"}, "value": {"192.0.2.8"}})

	res, _ := rival.post("/dns/records/"+id+"/delete", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's record: %d", res.StatusCode)
	}
	if len(sh.dnsRecords(sh.tenant)) != 1 || len(sh.dnsRecords(rivalTenant)) != 1 {
		t.Fatal("a refused delete removed a record")
	}

	res, _ = sh.owner.post("/dns/records/"+id+"/delete", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/dns" {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if len(sh.dnsRecords(sh.tenant)) != 0 {
		t.Error("record not removed")
	}
	_, doc := sh.owner.get("/dns")
	if f := textOf(doc, `[data-testid="flash"]`); !strings.Contains(f, "deleted") {
		t.Errorf("flash %q", f)
	}
	if res, _ := sh.owner.post("/dns/records/"+id+"/delete", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("deleting twice: %d", res.StatusCode)
	}
}

func TestWebDNSAccess(t *testing.T) {
	sh := newShop(t)
	sh.addDNS(sh.owner, url.Values{"name": {"www"}, "type": {"A"}, "value": {"192.0.2.7"}})
	id := sh.dnsRecords(sh.tenant)[0].ID
	ro := sh.join(sh.inviteLink(sh.owner, "ro@acme.example", store.RoleReadOnly))

	t.Run("read-only member sees records but no forms", func(t *testing.T) {
		sh.e.t = t
		res, doc := ro.get("/dns")
		if res.StatusCode != http.StatusOK || doc.Find(`[data-testid="dns-row"]`).Length() != 1 {
			t.Fatalf("status %d", res.StatusCode)
		}
		for _, id := range []string{"dns-add-form", "add-record-card", "dns-delete-form"} {
			if doc.Find(`[data-testid="`+id+`"]`).Length() != 0 {
				t.Errorf("read-only member sees %s", id)
			}
		}
	})

	for _, tc := range []struct {
		name   string
		b      *browser
		status int
	}{
		{"read-only member", ro, http.StatusForbidden},
		{"signed out", sh.e.browser(), http.StatusUnauthorized},
		{"staff", sh.e.staffBrowser(store.RoleAdmin), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh.e.t = t
			if res, _ := tc.b.post("/dns/records", url.Values{"name": {"ro"}, "type": {"A"}, "value": {"192.0.2.1"}}); res.StatusCode != tc.status {
				t.Errorf("create: %d, want %d", res.StatusCode, tc.status)
			}
			if res, _ := tc.b.post("/dns/records/"+id+"/delete", nil); res.StatusCode != tc.status {
				t.Errorf("delete: %d, want %d", res.StatusCode, tc.status)
			}
			if n := len(sh.dnsRecords(sh.tenant)); n != 1 {
				t.Errorf("%d records, want 1", n)
			}
		})
	}

	t.Run("signed out goes to login", func(t *testing.T) {
		sh.e.t = t
		res, _ := sh.e.browser().get("/dns")
		if res.StatusCode/100 != 3 || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
			t.Errorf("%d %s", res.StatusCode, res.Header.Get("Location"))
		}
	})
}
