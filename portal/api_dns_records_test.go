package portal

import (
	"context"
	"net/http"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func dnsRecordCount(t *testing.T, e *env, tenantID string) int {
	t.Helper()
	_, n, err := e.st.ListDNSRecords(context.Background(), tenantID, store.Page{PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAPIDNSRecords(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Hosting", "h@hosting.example")
	other := e.customer("Rival", "r@rival.example")
	tenantID, _ := e.account(owner)

	res := e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, map[string]any{"name": "www", "type": "A", "value": "192.0.2.7"})
	if res["name"] != "www" || res["fqdn"] != "www.hosting.cloud.internal" || res["type"] != "A" || res["value"] != "192.0.2.7" ||
		res["ttl"] != float64(store.DefaultDNSTTL) || res["priority"] != float64(0) || res["created_at"] == "" {
		t.Errorf("created record: %v", res)
	}
	id := res["id"].(string)
	res = e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, map[string]any{"name": "@", "type": "MX", "value": "mail.example.com", "ttl": 300, "priority": 10})
	if res["fqdn"] != "hosting.cloud.internal" || res["ttl"] != float64(300) || res["priority"] != float64(10) {
		t.Errorf("mx record: %v", res)
	}

	list := e.want(http.StatusOK, "GET", "/api/v1/dns/records", owner, nil)
	if l := items(list); len(l) != 2 || list["total"] != float64(2) {
		t.Errorf("list: %v", list)
	}
	if l := items(e.want(http.StatusOK, "GET", "/api/v1/dns/records", other, nil)); len(l) != 0 {
		t.Errorf("another tenant sees records: %v", l)
	}

	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/dns/records/"+id, other, nil)
	if dnsRecordCount(t, e, tenantID) != 2 {
		t.Fatal("another tenant removed a record")
	}
	if code, body := e.api("DELETE", "/api/v1/dns/records/"+id, owner, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, body)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/dns/records/"+id, owner, nil)
	if dnsRecordCount(t, e, tenantID) != 1 {
		t.Error("record not removed")
	}
}

func TestAPIDNSRecordRefusals(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Hosting", "h@hosting.example")
	tenantID, _ := e.account(owner)

	for _, tc := range []struct {
		name, code, field string
		status            int
		body              any
	}{
		{"bad name", "invalid", "name", http.StatusUnprocessableEntity, map[string]any{"name": "no spaces", "type": "A", "value": "192.0.2.1"}},
		{"bad type", "invalid", "type", http.StatusUnprocessableEntity, map[string]any{"name": "x", "type": "SRV", "value": "192.0.2.1"}},
		{"A with IPv6", "invalid", "value", http.StatusUnprocessableEntity, map[string]any{"name": "x", "type": "A", "value": "2001:db8::1"}},
		{"ttl too short", "invalid", "ttl", http.StatusUnprocessableEntity, map[string]any{"name": "x", "type": "A", "value": "192.0.2.1", "ttl": 5}},
		{"priority on A", "invalid", "priority", http.StatusUnprocessableEntity, map[string]any{"name": "x", "type": "A", "value": "192.0.2.1", "priority": 5}},
		{"unknown field", "bad_request", "fqdn", http.StatusBadRequest, map[string]any{"name": "x", "type": "A", "value": "192.0.2.1", "fqdn": "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/dns/records", owner, tc.body)
			if n := dnsRecordCount(t, e, tenantID); n != 0 {
				t.Errorf("%d records after a refusal", n)
			}
		})
	}

	t.Run("duplicate", func(t *testing.T) {
		e.t = t
		rec := map[string]any{"name": "dup", "type": "A", "value": "192.0.2.9"}
		e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, rec)
		e.wantErr(http.StatusConflict, "conflict", "value", "POST", "/api/v1/dns/records", owner, rec)
	})
}

func TestAPIDNSRecordAccess(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Hosting", "h@hosting.example")
	tenantID, _ := e.account(owner)
	res := e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, map[string]any{"name": "www", "type": "A", "value": "192.0.2.7"})
	id := res["id"].(string)
	readonly := e.member(owner, "ro@hosting.example", store.RoleReadOnly)
	readToken := e.apiToken(owner, store.ScopeRead)
	rec := map[string]any{"name": "api", "type": "A", "value": "192.0.2.8"}

	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"readonly member", readonly, http.StatusForbidden},
		{"read-scope token", readToken, http.StatusForbidden},
		{"unauthenticated", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			if code, body := e.api("POST", "/api/v1/dns/records", tc.token, rec); code != tc.status {
				t.Errorf("create: %d %v", code, body)
			}
			if code, body := e.api("DELETE", "/api/v1/dns/records/"+id, tc.token, nil); code != tc.status {
				t.Errorf("delete: %d %v", code, body)
			}
			if n := dnsRecordCount(t, e, tenantID); n != 1 {
				t.Errorf("%d records, want 1", n)
			}
		})
	}
	for _, tok := range []string{readonly, readToken} {
		if l := items(e.want(http.StatusOK, "GET", "/api/v1/dns/records", tok, nil)); len(l) != 1 {
			t.Errorf("reader list: %v", l)
		}
	}
	e.wantErr(http.StatusUnauthorized, "unauthenticated", "", "GET", "/api/v1/dns/records", "", nil)
	e.wantErr(http.StatusForbidden, "forbidden", "", "GET", "/api/v1/dns/records", e.staff(store.RoleAdmin), nil)
}
