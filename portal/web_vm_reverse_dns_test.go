package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestVMDetailReverseDNSForm shows the address's PTR name on the VM page,
// sets and clears it through the form with the reasons of refusals at the
// field, and keeps readers and other tenants out.
func TestVMDetailReverseDNSForm(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	page := "/vms/" + id
	text := func(b *browser, testid string) string {
		t.Helper()
		_, doc := b.get(page)
		return strings.Join(strings.Fields(doc.Find(`[data-testid="`+testid+`"]`).Text()), " ")
	}

	// Without an address there is nothing to name, and no form.
	if got := text(sh.owner, "vm-reverse-dns"); !strings.Contains(got, "no address yet") {
		t.Errorf("before an address: %q", got)
	}
	if _, doc := sh.owner.get(page); doc.Find(`[data-testid=vm-reverse-dns-form]`).Length() != 0 {
		t.Error("a form for a VM without an address")
	}

	if _, err := sh.e.st.CreateSubnet(ctx, store.Actor{Email: "test"}, store.SubnetInput{Name: "lan", CIDR: "10.60.0.0/24",
		Gateway: "10.60.0.1", RangeStart: "10.60.0.10", RangeEnd: "10.60.0.20"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.e.st.AllocateIP(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := text(sh.owner, "vm-reverse-dns-name"); got != "web-1.acme.cloud.internal" {
		t.Errorf("default name: %q", got)
	}
	if text(sh.owner, "vm-reverse-dns-default") == "" {
		t.Error("the default is not marked as the VM's own name")
	}
	if res, _ := sh.owner.post("/dns/records", url.Values{"name": {"mail"}, "type": {"A"}, "value": {"10.60.0.10"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add record: %d", res.StatusCode)
	}

	// Refusals: the page again, the name as typed, the reason at the field.
	for _, tc := range []struct{ in, says string }{
		{"mail.example.com", "not in your zone acme.cloud.internal"},
		{"nope.acme.cloud.internal", "does not resolve to 10.60.0.10"},
		{"bad_name.acme.cloud.internal", "must be a host name"},
	} {
		res, doc := sh.owner.post(page+"/reverse-dns", url.Values{"ptr": {tc.in}})
		field := doc.Find(`[data-testid=vm-reverse-dns-form] input[name=ptr]`)
		if res.StatusCode != http.StatusUnprocessableEntity || field.AttrOr("aria-invalid", "") != "true" ||
			field.AttrOr("value", "") != tc.in || !strings.Contains(doc.Find(`[data-testid=vm-reverse-dns-form]`).Text(), tc.says) {
			t.Errorf("%q: %d, field %v, form %q", tc.in, res.StatusCode, field.AttrOr("value", "?"), doc.Find(`[data-testid=vm-reverse-dns-form]`).Text())
		}
		if r, _ := sh.e.st.GetReverseDNS(ctx, sh.tenant, id); r.Custom() {
			t.Errorf("%q: a refusal set %q", tc.in, r.Name)
		}
	}

	res, _ := sh.owner.post(page+"/reverse-dns", url.Values{"ptr": {"mail.acme.cloud.internal"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("set: %d", res.StatusCode)
	}
	_, doc := sh.owner.get(page)
	if got := doc.Find(`[data-testid=vm-reverse-dns-name]`).Text(); got != "mail.acme.cloud.internal" {
		t.Errorf("after set: %q", got)
	}
	if v := doc.Find(`[data-testid=vm-reverse-dns-form] input[name=ptr]`).AttrOr("value", ""); v != "mail.acme.cloud.internal" {
		t.Errorf("form shows %q", v)
	}
	if !strings.Contains(doc.Find(`[role=status], .flash`).Text(), "is now mail.acme.cloud.internal") {
		t.Errorf("flash: %q", doc.Find(`.flash`).Text())
	}
	if doc.Find(`[data-testid=vm-reverse-dns-default]`).Length() != 0 || doc.Find(`[data-testid=vm-reverse-dns-clear-form]`).Length() != 1 {
		t.Error("a chosen name shown as the default, or without the way back")
	}

	// Readers and other tenants: refused, nothing changes.
	rival, _ := sh.signup("Rival", "r@rival.example")
	ro := sh.join(sh.inviteLink(sh.owner, "ro@acme.example", store.RoleReadOnly))
	for _, tc := range []struct {
		name   string
		b      *browser
		status int
	}{{"another tenant", rival, http.StatusNotFound}, {"read-only member", ro, http.StatusForbidden}, {"signed out", sh.e.browser(), http.StatusUnauthorized}} {
		if res, _ := tc.b.post(page+"/reverse-dns", url.Values{"ptr": {""}}); res.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.status)
		}
	}
	_, doc = ro.get(page)
	if doc.Find(`[data-testid=vm-reverse-dns-form], [data-testid=vm-reverse-dns-clear-form]`).Length() != 0 {
		t.Error("a read-only member sees the reverse DNS forms")
	}
	if got := doc.Find(`[data-testid=vm-reverse-dns-name]`).Text(); got != "mail.acme.cloud.internal" {
		t.Errorf("a reader sees %q", got)
	}

	// The form needs its CSRF token like every other.
	raw := httptest.NewRequest("POST", page+"/reverse-dns", strings.NewReader(url.Values{"ptr": {""}}.Encode()))
	raw.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := sh.owner.send(raw); res.StatusCode != http.StatusForbidden {
		t.Errorf("without a CSRF token: %d", res.StatusCode)
	}

	res, _ = sh.owner.post(page+"/reverse-dns", url.Values{"ptr": {""}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %d", res.StatusCode)
	}
	if got := text(sh.owner, "vm-reverse-dns-name"); got != "web-1.acme.cloud.internal" {
		t.Errorf("after clear: %q", got)
	}
}
