package portal

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestAPIUnauthenticated(t *testing.T) {
	e := newEnv(t)
	public := map[string]bool{"/api/v1/openapi.json": true, "/api/v1/auth/signup": true, "/api/v1/auth/signup/confirm": true, "/api/v1/auth/login": true,
		"/api/v1/auth/password/forgot": true, "/api/v1/auth/password/reset": true}
	n := 0
	for _, r := range apiRoutes(e) {
		if public[r[1]] {
			continue
		}
		n++
		path := strings.ReplaceAll(r[1], ":id", "someid")
		if code, body := e.api(r[0], path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d %v", r[0], path, code, body)
		}
		if code, _ := e.api(r[0], path, "not-a-token", nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s with a bad token: %d", r[0], path, code)
		}
	}
	if n < 30 {
		t.Errorf("only %d guarded API routes found", n)
	}
}

func TestAPICustomerCannotSeeAdmin(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Nosy", "n@nosy.example")
	for _, r := range apiRoutes(e) {
		if !strings.HasPrefix(r[1], "/api/v1/admin/") {
			continue
		}
		path := strings.ReplaceAll(r[1], ":id", "someid")
		code, body := e.api(r[0], path, tok, map[string]any{})
		if c, _ := apiErr(body); code != http.StatusNotFound || c != "not_found" {
			t.Errorf("customer %s %s: %d %v", r[0], path, code, body)
		}
	}
}

func TestAPIStaffCannotUseCustomerRoutes(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	for _, tc := range []struct{ name, method, path string }{
		{"quota", "GET", "/api/v1/quota"},
		{"keys", "GET", "/api/v1/ssh-keys"},
		{"vms", "GET", "/api/v1/vms"},
		{"order", "POST", "/api/v1/vms"},
		{"audit", "GET", "/api/v1/audit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(http.StatusForbidden, "forbidden", "", tc.method, tc.path, admin, nil)
		})
	}
}

// TestAPIBodyRefusals sends bad bodies to every route that takes one.
func TestAPIBodyRefusals(t *testing.T) {
	e := newEnv(t)
	cust := e.customer("Bodies", "b@bodies.example")
	admin := e.staff(store.RoleAdmin)
	routes := []struct{ method, path, token string }{
		{"POST", "/api/v1/ssh-keys", cust},
		{"POST", "/api/v1/vms", cust},
		{"POST", "/api/v1/vms/someid/actions", cust},
		{"PUT", "/api/v1/vms/someid/reverse-dns", cust},
		{"POST", "/api/v1/admin/plans", admin},
		{"PUT", "/api/v1/admin/plans/plan-nano", admin},
		{"POST", "/api/v1/admin/images", admin},
		{"PUT", "/api/v1/admin/images/someid", admin},
		{"PUT", "/api/v1/admin/tenants/someid/quota", admin},
		{"POST", "/api/v1/admin/tenants/someid/suspend", admin},
		{"PUT", "/api/v1/admin/quota-defaults", admin},
		{"POST", "/api/v1/admin/users", admin},
	}
	cases := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"malformed JSON", "application/json", `{"name":`, http.StatusBadRequest, "bad_request"},
		{"not an object", "application/json", `[1,2]`, http.StatusBadRequest, "bad_request"},
		{"empty body", "application/json", ``, http.StatusBadRequest, "bad_request"},
		{"unknown field", "application/json", `{"bogus":1}`, http.StatusBadRequest, "bad_request"},
		{"two values", "application/json", `{} {}`, http.StatusBadRequest, "bad_request"},
		{"form content type", "application/x-www-form-urlencoded", `name=x`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"no content type", "", `{}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	}
	before, _, _ := e.st.ListAudit(t.Context(), store.AuditFilter{Result: store.ResultSuccess}, store.Page{PerPage: 100})
	for _, r := range routes {
		for _, tc := range cases {
			code, body := e.raw(r.method, r.path, r.token, tc.contentType, tc.body)
			if code != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, `"request_id"`) {
				t.Errorf("%s %s, %s: %d %s", r.method, r.path, tc.name, code, body)
			}
		}
	}
	after, _, _ := e.st.ListAudit(t.Context(), store.AuditFilter{Result: store.ResultSuccess}, store.Page{PerPage: 100})
	if len(after) != len(before) {
		t.Errorf("bad bodies changed something: %d successful changes before, %d after", len(before), len(after))
	}
	// A field of the wrong type names the field.
	code, body := e.api("POST", "/api/v1/vms", cust, `{"name":"a","ssh_keys":"k"}`)
	if _, f := apiErr(body); code != http.StatusBadRequest || f != "ssh_keys" {
		t.Errorf("wrong type: %d %v", code, body)
	}
}

func TestAPIReadScopeToken(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Scoped", "s@scoped.example")
	keyID := e.addKey(owner, "laptop")
	ro := e.apiToken(owner, store.ScopeRead)
	rw := e.apiToken(owner, store.ScopeWrite)
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"list keys", "GET", "/api/v1/ssh-keys", nil, http.StatusOK},
		{"get key", "GET", "/api/v1/ssh-keys/" + keyID, nil, http.StatusOK},
		{"quota", "GET", "/api/v1/quota", nil, http.StatusOK},
		{"plans", "GET", "/api/v1/plans", nil, http.StatusOK},
		{"vms", "GET", "/api/v1/vms", nil, http.StatusOK},
		{"audit", "GET", "/api/v1/audit", nil, http.StatusOK},
		{"add key", "POST", "/api/v1/ssh-keys", map[string]string{"name": "x", "public_key": pubKey(t, "x")}, http.StatusForbidden},
		{"delete key", "DELETE", "/api/v1/ssh-keys/" + keyID, nil, http.StatusForbidden},
		{"order", "POST", "/api/v1/vms", map[string]any{"name": "web"}, http.StatusForbidden},
		{"delete vm", "DELETE", "/api/v1/vms/someid", nil, http.StatusForbidden},
		{"action", "POST", "/api/v1/vms/someid/actions", map[string]string{"type": "start"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := e.api(tc.method, tc.path, ro, tc.body); code != tc.want {
				t.Errorf("read token: %d, want %d: %v", code, tc.want, body)
			}
		})
	}
	e.t = t
	e.want(http.StatusOK, "GET", "/api/v1/ssh-keys/"+keyID, ro, nil)
	e.want(http.StatusNoContent, "DELETE", "/api/v1/ssh-keys/"+keyID, rw, nil)

	staffRO := e.apiToken(e.staff(store.RoleAdmin), store.ScopeRead)
	e.want(http.StatusOK, "GET", "/api/v1/admin/tenants", staffRO, nil)
	e.wantErr(http.StatusForbidden, "forbidden", "", "PUT", "/api/v1/admin/quota-defaults", staffRO, map[string]int{})
	tenantID, _ := e.account(owner)
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/admin/tenants/"+tenantID+"/suspend", staffRO, map[string]string{"reason": "x"})
}

func TestAPIReadonlyMember(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Roles", "o@roles.example")
	keyID := e.addKey(owner, "laptop")
	e.image("debian-12")
	vmID := e.order(owner, "web", "nano", "debian-12", keyID)
	ro := e.member(owner, "ro@roles.example", store.RoleReadOnly)
	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"add key", "POST", "/api/v1/ssh-keys", map[string]string{"name": "x", "public_key": pubKey(t, "x")}},
		{"delete key", "DELETE", "/api/v1/ssh-keys/" + keyID, nil},
		{"order", "POST", "/api/v1/vms", map[string]any{"name": "db", "plan": "nano", "image": "debian-12", "ssh_keys": []string{keyID}}},
		{"delete vm", "DELETE", "/api/v1/vms/" + vmID, nil},
		{"action", "POST", "/api/v1/vms/" + vmID + "/actions", map[string]string{"type": "delete"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(http.StatusForbidden, "forbidden", "", tc.method, tc.path, ro, tc.body)
		})
	}
	e.t = t
	if got := e.want(http.StatusOK, "GET", "/api/v1/vms/"+vmID, ro, nil); got["state"] != store.VMPending {
		t.Errorf("readonly member changed the VM: %v", got)
	}
	e.want(http.StatusOK, "GET", "/api/v1/ssh-keys/"+keyID, ro, nil)
	// An ordinary member may write.
	mem := e.member(owner, "m@roles.example", store.RoleMember)
	e.addKey(mem, "member-key")
}

func TestAPIStaffRoles(t *testing.T) {
	e := newEnv(t)
	cust := e.customer("Staffed", "s@staffed.example")
	tenantID, _ := e.account(cust)
	quota := map[string]int64{"instances": 3, "vcpus": 4, "memory_mib": 4096, "disk_gib": 50, "ssh_keys": 5, "port_forwards": 1}
	plan := map[string]any{"name": "p1", "vcpus": 1, "memory_mib": 512, "disk_gib": 10, "enabled": true}
	image := map[string]any{"name": "alpine", "os": "Alpine", "version": "3.20", "source_url": "https://img.example/a.qcow2", "checksum": strings.Repeat("cd", 32)}
	user := map[string]string{"email": "new@isp.example", "password": "long enough password", "role": "auditor"}
	writes := []struct {
		name, method, path string
		body               any
		operator           int // what an operator gets
	}{
		{"create plan", "POST", "/api/v1/admin/plans", plan, http.StatusForbidden},
		{"update plan", "PUT", "/api/v1/admin/plans/plan-nano", plan, http.StatusForbidden},
		{"create image", "POST", "/api/v1/admin/images", image, http.StatusForbidden},
		{"update image", "PUT", "/api/v1/admin/images/someid", image, http.StatusForbidden},
		{"create user", "POST", "/api/v1/admin/users", user, http.StatusForbidden},
		{"quota defaults", "PUT", "/api/v1/admin/quota-defaults", quota, http.StatusForbidden},
		{"tenant quota", "PUT", "/api/v1/admin/tenants/" + tenantID + "/quota", quota, http.StatusOK},
		{"suspend", "POST", "/api/v1/admin/tenants/" + tenantID + "/suspend", map[string]string{"reason": "unpaid"}, http.StatusOK},
		{"unsuspend", "POST", "/api/v1/admin/tenants/" + tenantID + "/unsuspend", nil, http.StatusOK},
	}
	auditor, operator := e.staff(store.RoleAuditor), e.staff(store.RoleOperator)
	for _, w := range writes {
		t.Run("auditor "+w.name, func(t *testing.T) {
			e.t = t
			e.wantErr(http.StatusForbidden, "forbidden", "", w.method, w.path, auditor, w.body)
		})
	}
	for _, w := range writes {
		t.Run("operator "+w.name, func(t *testing.T) {
			if code, body := e.api(w.method, w.path, operator, w.body); code != w.operator {
				t.Errorf("%d, want %d: %v", code, w.operator, body)
			}
		})
	}
	e.t = t
	for _, r := range apiRoutes(e) {
		if r[0] == "GET" && strings.HasPrefix(r[1], "/api/v1/admin/") && !strings.Contains(r[1], ":id") {
			e.want(http.StatusOK, "GET", r[1], auditor, nil)
		}
	}
	e.want(http.StatusOK, "GET", "/api/v1/admin/tenants/"+tenantID, auditor, nil)
}
