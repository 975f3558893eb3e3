package portal

import (
	"context"
	"net/http"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// forwardFixture is a tenant with a VM, and a second tenant with its own.
type forwardFixture struct {
	e                 *env
	owner, other      string
	vm, otherVM       string
	tenantID, otherID string
}

func newForwardFixture(t *testing.T) forwardFixture {
	e := newEnv(t)
	e.image("debian-12")
	f := forwardFixture{e: e, owner: e.customer("Hosting", "h@hosting.example"), other: e.customer("Rival", "r@rival.example")}
	f.vm = e.order(f.owner, "web", "nano", "debian-12", e.addKey(f.owner, "laptop"))
	f.otherVM = e.order(f.other, "db", "nano", "debian-12", e.addKey(f.other, "laptop"))
	f.tenantID, _ = e.account(f.owner)
	f.otherID, _ = e.account(f.other)
	return f
}

func (f forwardFixture) count(tenantID string) int {
	f.e.t.Helper()
	_, n, err := f.e.st.ListPortForwards(context.Background(), tenantID, store.Page{PerPage: 100})
	if err != nil {
		f.e.t.Fatal(err)
	}
	return n
}

func TestAPIForwardCreateListDelete(t *testing.T) {
	f := newForwardFixture(t)
	e := f.e

	res := e.want(http.StatusCreated, "POST", "/api/v1/forwards", f.owner, map[string]any{"vm": f.vm, "target_port": 22})
	if res["public_port"] != float64(20000) || res["target_port"] != float64(22) || res["protocol"] != "tcp" ||
		res["address"] != "127.0.0.1:20000" || obj(res["vm"])["id"] != f.vm || obj(res["vm"])["name"] != "web" || res["created_at"] == "" {
		t.Errorf("created forward: %v", res)
	}
	id := res["id"].(string)
	res = e.want(http.StatusCreated, "POST", "/api/v1/forwards", f.owner, map[string]any{"vm": f.vm, "public_port": 20500, "target_port": 8080})
	if res["public_port"] != float64(20500) || res["address"] != "127.0.0.1:20500" {
		t.Errorf("chosen port: %v", res)
	}

	list := e.want(http.StatusOK, "GET", "/api/v1/forwards", f.owner, nil)
	if l := items(list); len(l) != 2 || list["total"] != float64(2) || obj(l[0])["public_port"] != float64(20000) || obj(obj(l[0])["vm"])["name"] != "web" {
		t.Errorf("list: %v", list)
	}
	if l := items(e.want(http.StatusOK, "GET", "/api/v1/forwards", f.other, nil)); len(l) != 0 {
		t.Errorf("another tenant sees forwards: %v", l)
	}

	// Another tenant cannot remove it; the owner can, once.
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/forwards/"+id, f.other, nil)
	if f.count(f.tenantID) != 2 {
		t.Fatal("another tenant removed a forward")
	}
	if code, body := e.api("DELETE", "/api/v1/forwards/"+id, f.owner, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, body)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/forwards/"+id, f.owner, nil)
	if f.count(f.tenantID) != 1 {
		t.Error("forward not removed")
	}
}

func TestAPIForwardCreateRefusals(t *testing.T) {
	f := newForwardFixture(t)
	e := f.e
	e.want(http.StatusCreated, "POST", "/api/v1/forwards", f.other, map[string]any{"vm": f.otherVM, "public_port": 20100, "target_port": 22})

	for _, tc := range []struct {
		name, code, field string
		status            int
		body              any
	}{
		{"target port zero", "invalid", "target_port", http.StatusUnprocessableEntity, map[string]any{"vm": f.vm, "target_port": 0}},
		{"target port too high", "invalid", "target_port", http.StatusUnprocessableEntity, map[string]any{"vm": f.vm, "target_port": 70000}},
		{"public port below range", "invalid", "public_port", http.StatusUnprocessableEntity, map[string]any{"vm": f.vm, "public_port": 80, "target_port": 80}},
		{"public port above range", "invalid", "public_port", http.StatusUnprocessableEntity, map[string]any{"vm": f.vm, "public_port": 21000, "target_port": 80}},
		{"no vm", "invalid", "vm", http.StatusUnprocessableEntity, map[string]any{"target_port": 80}},
		{"port taken by another tenant", "conflict", "public_port", http.StatusConflict, map[string]any{"vm": f.vm, "public_port": 20100, "target_port": 22}},
		{"another tenant's vm", "not_found", "vm", http.StatusNotFound, map[string]any{"vm": f.otherVM, "target_port": 22}},
		{"unknown vm", "not_found", "vm", http.StatusNotFound, map[string]any{"vm": "nope", "target_port": 22}},
		{"unknown field", "bad_request", "port", http.StatusBadRequest, map[string]any{"vm": f.vm, "port": 22}},
		{"port as text", "bad_request", "target_port", http.StatusBadRequest, map[string]any{"vm": f.vm, "target_port": "22"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/forwards", f.owner, tc.body)
			if n := f.count(f.tenantID); n != 0 {
				t.Errorf("%d forwards after a refusal", n)
			}
		})
	}

	t.Run("quota", func(t *testing.T) {
		e.t = t
		q, err := e.st.DefaultQuota(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		q.PortForwards = 1
		if err := e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, f.tenantID, q); err != nil {
			t.Fatal(err)
		}
		e.want(http.StatusCreated, "POST", "/api/v1/forwards", f.owner, map[string]any{"vm": f.vm, "target_port": 22})
		e.wantErr(http.StatusUnprocessableEntity, "quota_exceeded", "", "POST", "/api/v1/forwards", f.owner, map[string]any{"vm": f.vm, "target_port": 80})
		if n := f.count(f.tenantID); n != 1 {
			t.Errorf("%d forwards, want 1", n)
		}
	})
}

func TestAPIForwardAccess(t *testing.T) {
	f := newForwardFixture(t)
	e := f.e
	res := e.want(http.StatusCreated, "POST", "/api/v1/forwards", f.owner, map[string]any{"vm": f.vm, "target_port": 22})
	id := res["id"].(string)
	readonly := e.member(f.owner, "ro@hosting.example", store.RoleReadOnly)
	readToken := e.apiToken(f.owner, store.ScopeRead)
	create := map[string]any{"vm": f.vm, "target_port": 80}
	patch := map[string]any{"expose_http": true}

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
			for _, r := range []struct {
				method, path string
				body         any
			}{
				{"POST", "/api/v1/forwards", create},
				{"DELETE", "/api/v1/forwards/" + id, nil},
				{"PATCH", "/api/v1/vms/" + f.vm, patch},
			} {
				if code, body := e.api(r.method, r.path, tc.token, r.body); code != tc.status {
					t.Errorf("%s %s: %d %v, want %d", r.method, r.path, code, body, tc.status)
				}
			}
			if n := f.count(f.tenantID); n != 1 {
				t.Errorf("%d forwards, want 1", n)
			}
			ex, err := e.st.GetVMExposure(context.Background(), f.tenantID, f.vm)
			if err != nil || ex.HTTP {
				t.Errorf("exposure changed: %+v %v", ex, err)
			}
		})
	}
	// Readers may list.
	for _, tok := range []string{readonly, readToken} {
		if l := items(e.want(http.StatusOK, "GET", "/api/v1/forwards", tok, nil)); len(l) != 1 {
			t.Errorf("reader list: %v", l)
		}
	}
	e.wantErr(http.StatusUnauthorized, "unauthenticated", "", "GET", "/api/v1/forwards", "", nil)
	e.wantErr(http.StatusForbidden, "forbidden", "", "GET", "/api/v1/forwards", e.staff(store.RoleAdmin), nil)
}

func TestAPIVMExposure(t *testing.T) {
	f := newForwardFixture(t)
	e := f.e

	res := e.want(http.StatusOK, "PATCH", "/api/v1/vms/"+f.vm, f.owner, map[string]any{"expose_https": true, "proxy_protocol": true})
	if res["id"] != f.vm || res["name"] != "web" || res["dns_name"] != "web.hosting.cloud.internal" {
		t.Errorf("vm: %v", res)
	}
	if ex := obj(res["exposure"]); ex["http"] != false || ex["https"] != true || ex["proxy_protocol"] != true {
		t.Errorf("exposure: %v", ex)
	}
	// Absent settings stay as they are.
	res = e.want(http.StatusOK, "PATCH", "/api/v1/vms/"+f.vm, f.owner, map[string]any{"expose_http": true})
	if ex := obj(res["exposure"]); ex["http"] != true || ex["https"] != true || ex["proxy_protocol"] != true {
		t.Errorf("exposure after second patch: %v", ex)
	}
	res = e.want(http.StatusOK, "PATCH", "/api/v1/vms/"+f.vm, f.owner, map[string]any{})
	if ex := obj(res["exposure"]); ex["http"] != true || ex["https"] != true {
		t.Errorf("empty patch changed exposure: %v", ex)
	}

	for _, tc := range []struct {
		name, path, code, field string
		status                  int
		body                    any
	}{
		{"another tenant's vm", "/api/v1/vms/" + f.otherVM, "not_found", "", http.StatusNotFound, map[string]any{"expose_http": true}},
		{"unknown vm", "/api/v1/vms/nope", "not_found", "", http.StatusNotFound, map[string]any{"expose_http": true}},
		{"unknown field", "/api/v1/vms/" + f.vm, "bad_request", "name", http.StatusBadRequest, map[string]any{"name": "x"}},
		{"not a bool", "/api/v1/vms/" + f.vm, "bad_request", "expose_http", http.StatusBadRequest, map[string]any{"expose_http": "yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "PATCH", tc.path, f.owner, tc.body)
		})
	}
	ex, err := e.st.GetVMExposure(context.Background(), f.otherID, f.otherVM)
	if err != nil || ex.HTTP || ex.HTTPS {
		t.Errorf("another tenant's vm exposed: %+v %v", ex, err)
	}
}
