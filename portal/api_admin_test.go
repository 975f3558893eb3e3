package portal

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestAPIAdminPlans(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	cust := e.customer("Buyer", "b@buyer.example")
	p := e.want(http.StatusCreated, "POST", "/api/v1/admin/plans", admin, map[string]any{"name": "XL", "vcpus": 8, "memory_mib": 16384, "disk_gib": 160})
	if p["name"] != "xl" || p["enabled"] != true || p["vm_count"] != float64(0) {
		t.Errorf("created: %v", p)
	}
	id := p["id"].(string)
	off := e.want(http.StatusCreated, "POST", "/api/v1/admin/plans", admin, map[string]any{"name": "off", "vcpus": 1, "memory_mib": 512, "disk_gib": 10, "enabled": false})
	if off["enabled"] != false {
		t.Errorf("created disabled: %v", off)
	}
	full := map[string]any{"name": "xl", "vcpus": 8, "memory_mib": 16384, "disk_gib": 160, "enabled": true}
	without := func(k string) map[string]any {
		m := map[string]any{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	with := func(k string, v any) map[string]any { m := without(k); m[k] = v; return m }
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		status             int
		code, field        string
	}{
		{"missing vcpus", "POST", "", without("vcpus"), 422, "invalid", "vcpus"},
		{"missing name", "POST", "", without("name"), 422, "invalid", "name"},
		{"too little memory", "POST", "", with("memory_mib", 64), 422, "invalid", "memory_mib"},
		{"bad name", "POST", "", with("name", "no spaces"), 422, "invalid", "name"},
		{"duplicate", "POST", "", with("name", "nano"), 409, "conflict", "name"},
		{"update without enabled", "PUT", "/" + id, without("enabled"), 422, "invalid", "enabled"},
		{"update zero disk", "PUT", "/" + id, with("disk_gib", 0), 422, "invalid", "disk_gib"},
		{"update to taken name", "PUT", "/" + id, with("name", "small"), 409, "conflict", "name"},
		{"update unknown", "PUT", "/nope", full, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, tc.method, "/api/v1/admin/plans"+tc.path, admin, tc.body)
		})
	}
	e.t = t
	up := e.want(http.StatusOK, "PUT", "/api/v1/admin/plans/"+id, admin, with("enabled", false))
	if up["enabled"] != false || up["id"] != id {
		t.Errorf("updated: %v", up)
	}
	l := items(e.want(http.StatusOK, "GET", "/api/v1/admin/plans", admin, nil))
	if len(l) != 6 {
		t.Errorf("admin plans: %v", l)
	}
	for _, p := range items(e.want(http.StatusOK, "GET", "/api/v1/plans", cust, nil)) {
		if n := obj(p)["name"]; n == "xl" || n == "off" {
			t.Errorf("disabled plan offered: %v", p)
		}
	}
}

func TestAPIAdminImages(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	body := map[string]any{"name": "ubuntu-24.04", "os": "Ubuntu", "version": "24.04", "source_url": "https://img.example/u.qcow2", "checksum": strings.Repeat("ef", 32)}
	im := e.want(http.StatusCreated, "POST", "/api/v1/admin/images", admin, body)
	if im["checksum"] != "sha256:"+strings.Repeat("ef", 32) || im["enabled"] != true {
		t.Errorf("created: %v", im)
	}
	id := im["id"].(string)
	with := func(k string, v any) map[string]any {
		m := map[string]any{"enabled": true}
		for kk, vv := range body {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		status             int
		code, field        string
	}{
		{"missing os", "POST", "", with("os", nil), 422, "invalid", "os"},
		{"bad url", "POST", "", with("source_url", "ftp://x/y"), 422, "invalid", "source_url"},
		{"bad checksum", "POST", "", with("checksum", "abc"), 422, "invalid", "checksum"},
		{"duplicate", "POST", "", body, 409, "conflict", "name"},
		{"update without enabled", "PUT", "/" + id, with("enabled", nil), 422, "invalid", "enabled"},
		{"update unknown", "PUT", "/nope", with("name", "other"), 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, tc.method, "/api/v1/admin/images"+tc.path, admin, tc.body)
		})
	}
	e.t = t
	if up := e.want(http.StatusOK, "PUT", "/api/v1/admin/images/"+id, admin, with("enabled", false)); up["enabled"] != false {
		t.Errorf("updated: %v", up)
	}
	if l := items(e.want(http.StatusOK, "GET", "/api/v1/admin/images", admin, nil)); len(l) != 1 || obj(l[0])["source_url"] == nil {
		t.Errorf("admin images: %v", l)
	}
	if l := items(e.want(http.StatusOK, "GET", "/api/v1/images", e.customer("C", "c@c.example"), nil)); len(l) != 0 {
		t.Errorf("disabled image offered: %v", l)
	}
}

func TestAPIAdminTenants(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	cust := e.customer("Zeta Works", "owner@zeta.example")
	e.customer("Alpha", "a@alpha.example")
	tenantID, _ := e.account(cust)
	e.member(cust, "ro@zeta.example", store.RoleReadOnly)

	l := e.want(http.StatusOK, "GET", "/api/v1/admin/tenants?q=zeta", admin, nil)
	if l["total"] != float64(1) || obj(items(l)[0])["owner_email"] != "owner@zeta.example" || obj(items(l)[0])["slug"] != "zeta-works" {
		t.Errorf("search: %v", l)
	}
	if l := e.want(http.StatusOK, "GET", "/api/v1/admin/tenants?q=ro@zeta", admin, nil); l["total"] != float64(1) {
		t.Errorf("search by member email: %v", l)
	}
	d := e.want(http.StatusOK, "GET", "/api/v1/admin/tenants/"+tenantID, admin, nil)
	if len(d["members"].([]any)) != 2 || obj(d["used"])["instances"] != float64(0) || obj(d["quota"])["instances"] != float64(5) {
		t.Errorf("detail: %v", d)
	}
	noSecrets(t, "tenant detail", d)
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/admin/tenants/nope", admin, nil)

	quota := map[string]any{"instances": 2, "vcpus": 2, "memory_mib": 2048, "disk_gib": 40, "ssh_keys": 3, "port_forwards": 0}
	for _, f := range []string{"instances", "vcpus", "memory_mib", "disk_gib", "ssh_keys", "port_forwards"} {
		t.Run("quota without "+f, func(t *testing.T) {
			e.t = t
			m := map[string]any{}
			for k, v := range quota {
				if k != f {
					m[k] = v
				}
			}
			e.wantErr(http.StatusUnprocessableEntity, "invalid", f, "PUT", "/api/v1/admin/tenants/"+tenantID+"/quota", admin, m)
		})
	}
	e.t = t
	neg := map[string]any{"instances": 2, "vcpus": -1, "memory_mib": 2048, "disk_gib": 40, "ssh_keys": 3, "port_forwards": 0}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "vcpus", "PUT", "/api/v1/admin/tenants/"+tenantID+"/quota", admin, neg)
	e.wantErr(http.StatusNotFound, "not_found", "", "PUT", "/api/v1/admin/tenants/nope/quota", admin, quota)
	if q := e.want(http.StatusOK, "GET", "/api/v1/quota", cust, nil); obj(q["limits"])["instances"] != float64(5) {
		t.Errorf("refused quota changes applied: %v", q)
	}
	d = e.want(http.StatusOK, "PUT", "/api/v1/admin/tenants/"+tenantID+"/quota", admin, quota)
	if obj(d["quota"])["memory_mib"] != float64(2048) {
		t.Errorf("quota update: %v", d)
	}
	if q := e.want(http.StatusOK, "GET", "/api/v1/quota", cust, nil); obj(q["limits"])["ssh_keys"] != float64(3) {
		t.Errorf("customer quota: %v", q)
	}

	suspend := "/api/v1/admin/tenants/" + tenantID + "/suspend"
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "reason", "POST", suspend, admin, map[string]string{"reason": " "})
	d = e.want(http.StatusOK, "POST", suspend, admin, map[string]string{"reason": "unpaid invoice"})
	if d["status"] != "suspended" || d["suspend_reason"] != "unpaid invoice" {
		t.Errorf("suspended: %v", d)
	}
	e.wantErr(http.StatusConflict, "invalid_state", "", "POST", suspend, admin, map[string]string{"reason": "again"})
	// Suspension ends the members' sessions; signing in again shows why.
	e.wantErr(http.StatusUnauthorized, "unauthenticated", "", "GET", "/api/v1/ssh-keys", cust, nil)
	login := e.want(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]string{"email": "owner@zeta.example", "password": "correct horse battery"})
	cust = login["token"].(string)
	e.wantErr(http.StatusForbidden, "suspended", "", "POST", "/api/v1/ssh-keys", cust, map[string]string{"name": "k", "public_key": pubKey(t, "k")})
	e.want(http.StatusOK, "GET", "/api/v1/ssh-keys", cust, nil)
	d = e.want(http.StatusOK, "POST", "/api/v1/admin/tenants/"+tenantID+"/unsuspend", admin, nil)
	if d["status"] != "active" || d["suspend_reason"] != "" {
		t.Errorf("unsuspended: %v", d)
	}
	e.wantErr(http.StatusConflict, "invalid_state", "", "POST", "/api/v1/admin/tenants/"+tenantID+"/unsuspend", admin, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "POST", "/api/v1/admin/tenants/nope/unsuspend", admin, nil)
	e.addKey(cust, "after")
}

func TestAPIAdminQuotaDefaults(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	if q := e.want(http.StatusOK, "GET", "/api/v1/admin/quota-defaults", admin, nil); q["instances"] != float64(5) || q["memory_mib"] != float64(16384) {
		t.Errorf("defaults: %v", q)
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "port_forwards", "PUT", "/api/v1/admin/quota-defaults", admin,
		map[string]any{"instances": 1, "vcpus": 1, "memory_mib": 512, "disk_gib": 10, "ssh_keys": 1})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "disk_gib", "PUT", "/api/v1/admin/quota-defaults", admin,
		map[string]any{"instances": 1, "vcpus": 1, "memory_mib": 512, "disk_gib": int64(1) << 41, "ssh_keys": 1, "port_forwards": 0})
	q := map[string]any{"instances": 1, "vcpus": 1, "memory_mib": 512, "disk_gib": 10, "ssh_keys": 1, "port_forwards": 0}
	if got := e.want(http.StatusOK, "PUT", "/api/v1/admin/quota-defaults", admin, q); got["ssh_keys"] != float64(1) {
		t.Errorf("update: %v", got)
	}
	newbie := e.customer("Newbie", "n@newbie.example")
	if got := e.want(http.StatusOK, "GET", "/api/v1/quota", newbie, nil); obj(got["limits"])["memory_mib"] != float64(512) {
		t.Errorf("new tenant quota: %v", got)
	}
}

func TestAPIAdminUsers(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	e.customer("Cust", "c@cust.example")
	u := e.want(http.StatusCreated, "POST", "/api/v1/admin/users", admin, map[string]string{"email": "Ops@ISP.example", "password": "a long password", "role": "operator"})
	if u["email"] != "ops@isp.example" || u["role"] != "operator" || u["staff"] != true {
		t.Errorf("created: %v", u)
	}
	noSecrets(t, "created user", u)
	for _, tc := range []struct {
		name        string
		body        map[string]string
		status      int
		code, field string
	}{
		{"short password", map[string]string{"email": "x@isp.example", "password": "short", "role": "admin"}, 422, "invalid", "password"},
		{"bad role", map[string]string{"email": "x@isp.example", "password": "a long password", "role": "owner"}, 422, "invalid", "role"},
		{"bad email", map[string]string{"email": "nope", "password": "a long password", "role": "admin"}, 422, "invalid", "email"},
		{"duplicate", map[string]string{"email": "ops@isp.example", "password": "a long password", "role": "admin"}, 409, "conflict", "email"},
		{"customer's email", map[string]string{"email": "c@cust.example", "password": "a long password", "role": "admin"}, 409, "conflict", "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/admin/users", admin, tc.body)
		})
	}
	e.t = t
	all := e.want(http.StatusOK, "GET", "/api/v1/admin/users", admin, nil)
	if all["total"] != float64(3) {
		t.Errorf("users: %v", all)
	}
	noSecrets(t, "user list", all)
	l := e.want(http.StatusOK, "GET", "/api/v1/admin/users?q=cust", admin, nil)
	if l["total"] != float64(1) || obj(items(l)[0])["tenant_name"] != "Cust" || obj(items(l)[0])["tenant_id"] == "" {
		t.Errorf("search: %v", l)
	}
	// The new operator can sign in and is an operator.
	code, _ := e.api("POST", "/api/v1/auth/login", "", map[string]string{"email": "ops@isp.example", "password": "a long password"})
	if code != http.StatusOK {
		t.Errorf("new staff login: %d", code)
	}
}

func TestAPIAdminVMsAndAudit(t *testing.T) {
	e := newEnv(t)
	auditor := e.staff(store.RoleAuditor)
	a := e.customer("Acme", "a@acme.example")
	b := e.customer("Bolt", "b@bolt.example")
	e.image("debian-12")
	aID, _ := e.account(a)
	e.order(a, "web", "nano", "debian-12", e.addKey(a, "k"))
	bvm := e.order(b, "db", "nano", "debian-12", e.addKey(b, "k"))
	e.want(http.StatusAccepted, "DELETE", "/api/v1/vms/"+bvm, b, nil)

	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"all", "", 2},
		{"by tenant name", "tenant=acm", 1},
		{"by tenant id", "tenant_id=" + aID, 1},
		{"by state", "state=deleting", 1},
		{"pending acme", "tenant=acme&state=pending", 1},
		{"none", "tenant=nobody", 0},
	} {
		t.Run("vms "+tc.name, func(t *testing.T) {
			res := e.want(http.StatusOK, "GET", "/api/v1/admin/vms?"+tc.query, auditor, nil)
			if res["total"] != float64(tc.want) {
				t.Errorf("%s: %v", tc.query, res)
			}
		})
	}
	e.t = t
	v := obj(items(e.want(http.StatusOK, "GET", "/api/v1/admin/vms?tenant=acme", auditor, nil))[0])
	if v["tenant_id"] != aID || v["tenant_name"] != "Acme" || v["name"] != "web" || len(v["ssh_keys"].([]any)) != 1 {
		t.Errorf("admin vm: %v", v)
	}
	e.wantErr(http.StatusBadRequest, "bad_request", "state", "GET", "/api/v1/admin/vms?state=melting", auditor, nil)

	for _, tc := range []struct {
		name, query string
		check       func(map[string]any) bool
	}{
		{"tenant", "tenant=" + aID, func(it map[string]any) bool { return it["tenant_id"] == aID }},
		{"actor", "actor=bolt", func(it map[string]any) bool { return strings.Contains(it["actor_email"].(string), "bolt") }},
		{"action", "action=vm.create", func(it map[string]any) bool { return it["action"] == "vm.create" }},
		{"result", "result=success", func(it map[string]any) bool { return it["result"] == "success" }},
	} {
		t.Run("audit "+tc.name, func(t *testing.T) {
			res := e.want(http.StatusOK, "GET", "/api/v1/admin/audit?"+tc.query, auditor, nil)
			if len(items(res)) == 0 {
				t.Fatalf("%s: no entries", tc.query)
			}
			for _, it := range items(res) {
				if !tc.check(obj(it)) {
					t.Errorf("%s: entry %v", tc.query, it)
				}
			}
		})
	}
	e.t = t
	if res := e.want(http.StatusOK, "GET", "/api/v1/admin/audit?action=vm.create", auditor, nil); res["total"] != float64(2) {
		t.Errorf("vm.create entries: %v", res)
	}
	e.wantErr(http.StatusBadRequest, "bad_request", "result", "GET", "/api/v1/admin/audit?result=x", auditor, nil)
}
