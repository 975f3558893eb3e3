package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestAPIVMs(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Hosting", "h@hosting.example")
	other := e.customer("Rival", "r@rival.example")
	img := e.image("debian-12")
	k1, k2 := e.addKey(tok, "alpha"), e.addKey(tok, "beta")
	otherKey := e.addKey(other, "theirs")

	vm := e.want(http.StatusCreated, "POST", "/api/v1/vms", tok, map[string]any{
		"name": "web-1", "plan": "small", "image": img.ID, "ssh_keys": []string{k1, k2}, "user_data": "#cloud-config\n",
	})
	if vm["state"] != store.VMPending || vm["desired_state"] != store.VMRunning || obj(vm["plan"])["id"] != "plan-small" ||
		obj(vm["image"])["name"] != "debian-12" || vm["memory_mib"] != float64(2048) || vm["user_data_bytes"] != float64(14) ||
		vm["ip"] != "" || vm["dns_name"] != "web-1.hosting.cloud.internal" || len(vm["ssh_keys"].([]any)) != 2 || vm["created_by"] != "h@hosting.example" {
		t.Errorf("ordered vm: %v", vm)
	}
	if _, ok := vm["timeline"]; ok {
		t.Errorf("create answers the plain vm object: %v", vm)
	}
	id := vm["id"].(string)

	for _, tc := range []struct {
		name        string
		order       map[string]any
		status      int
		code, field string
	}{
		{"bad name", map[string]any{"name": "Web_1", "plan": "nano", "image": "debian-12", "ssh_keys": []string{k1}}, 422, "invalid", "name"},
		{"no plan", map[string]any{"name": "a", "image": "debian-12", "ssh_keys": []string{k1}}, 422, "invalid", "plan"},
		{"unknown plan", map[string]any{"name": "a", "plan": "huge", "image": "debian-12", "ssh_keys": []string{k1}}, 422, "invalid", "plan"},
		{"unknown image", map[string]any{"name": "a", "plan": "nano", "image": "windows", "ssh_keys": []string{k1}}, 422, "invalid", "image"},
		{"no keys", map[string]any{"name": "a", "plan": "nano", "image": "debian-12", "ssh_keys": []string{}}, 422, "invalid", "ssh_keys"},
		{"other tenant's key", map[string]any{"name": "a", "plan": "nano", "image": "debian-12", "ssh_keys": []string{otherKey}}, 422, "invalid", "ssh_keys"},
		{"user data too big", map[string]any{"name": "a", "plan": "nano", "image": "debian-12", "ssh_keys": []string{k1}, "user_data": strings.Repeat("x", store.MaxUserData+1)}, 422, "invalid", "user_data"},
		{"duplicate name", map[string]any{"name": "web-1", "plan": "nano", "image": "debian-12", "ssh_keys": []string{k1}}, 409, "conflict", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/vms", tok, tc.order)
		})
	}
	e.t = t

	list := e.want(http.StatusOK, "GET", "/api/v1/vms", tok, nil)
	if list["total"] != float64(1) || obj(items(list)[0])["id"] != id || len(obj(items(list)[0])["ssh_keys"].([]any)) != 2 {
		t.Errorf("list: %v", list)
	}
	if l := e.want(http.StatusOK, "GET", "/api/v1/vms", other, nil); l["total"] != float64(0) {
		t.Errorf("other tenant sees vms: %v", l)
	}

	d := e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil)
	tl, _ := d["timeline"].([]any)
	if len(tl) != 1 || obj(tl[0])["step"] != "order" || obj(tl[0])["detail"] != nil || len(d["operations"].([]any)) != 0 {
		t.Errorf("detail: %v", d)
	}

	// Other tenants cannot see or touch it.
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/vms/"+id, other, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/vms/"+id, other, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "POST", "/api/v1/vms/"+id+"/actions", other, map[string]string{"type": "delete"})
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/vms/nope", tok, nil)

	for _, tc := range []struct {
		name, typ   string
		status      int
		code, field string
	}{
		{"unknown action", "explode", 422, "invalid", "type"},
		{"empty action", "", 422, "invalid", "type"},
		{"start while pending", "start", 409, "invalid_state", "type"},
		{"reboot while pending", "reboot", 409, "invalid_state", "type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/vms/"+id+"/actions", tok, map[string]string{"type": tc.typ})
		})
	}
	e.t = t
	if d := e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil); d["state"] != store.VMPending || len(d["operations"].([]any)) != 0 {
		t.Errorf("refused actions changed the vm: %v", d)
	}

	op := e.want(http.StatusAccepted, "DELETE", "/api/v1/vms/"+id, tok, nil)
	if op["type"] != store.OpDelete || op["state"] != store.OpQueued || op["requested_by"] != "h@hosting.example" || op["started_at"] != nil {
		t.Errorf("delete op: %v", op)
	}
	d = e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil)
	if d["state"] != store.VMDeleting || d["desired_state"] != store.VMDeleted || obj(d["operations"].([]any)[0])["id"] != op["id"] {
		t.Errorf("after delete: %v", d)
	}
	// Once deleting, even delete is refused.
	e.wantErr(http.StatusConflict, "invalid_state", "type", "POST", "/api/v1/vms/"+id+"/actions", tok, map[string]string{"type": "delete"})
}

func TestAPIOrderOverQuota(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Tight", "t@tight.example")
	tenantID, _ := e.account(tok)
	e.image("debian-12")
	key := e.addKey(tok, "k")
	ctx := context.Background()
	set := func(q store.Quota) {
		t.Helper()
		if err := e.st.SetTenantQuota(ctx, store.Actor{Email: "test"}, tenantID, q); err != nil {
			t.Fatal(err)
		}
	}
	set(store.Quota{Instances: 1, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 5})
	e.order(tok, "first", "nano", "debian-12", key)
	for _, tc := range []struct {
		name  string
		quota store.Quota
		plan  string
		want  string
	}{
		{"instances", store.Quota{Instances: 1, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 5}, "nano", "allows 1 instances"},
		{"vcpus", store.Quota{Instances: 5, VCPUs: 2, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 5}, "medium", "needs 2 vCPU; 1 left"},
		{"memory", store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 2048, DiskGiB: 200, SSHKeys: 5}, "small", "needs 2 GiB RAM; 1.5 GiB left"},
		{"disk", store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 20, SSHKeys: 5}, "small", "needs 20 GiB disk; 10 GiB left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.quota)
			code, body := e.api("POST", "/api/v1/vms", tok, map[string]any{"name": "second", "plan": tc.plan, "image": "debian-12", "ssh_keys": []string{key}})
			c, f := apiErr(body)
			msg, _ := obj(body["error"])["message"].(string)
			if code != http.StatusUnprocessableEntity || c != "quota_exceeded" || f != "plan" || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %s %s %q, want quota_exceeded naming %q", code, c, f, msg, tc.want)
			}
		})
	}
	if q := e.want(http.StatusOK, "GET", "/api/v1/quota", tok, nil); obj(q["used"])["instances"] != float64(1) {
		t.Errorf("refused orders were counted: %v", q)
	}
}

func TestAPIAudit(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Audited", "a@audited.example")
	other := e.customer("Elsewhere", "e@elsewhere.example")
	e.addKey(tok, "k")
	e.api("POST", "/api/v1/ssh-keys", tok, map[string]string{"name": "bad", "public_key": "nope"})
	e.addKey(other, "theirs")

	all := e.want(http.StatusOK, "GET", "/api/v1/audit", tok, nil)
	tenantID, _ := e.account(tok)
	for _, it := range items(all) {
		if obj(it)["tenant_id"] != tenantID {
			t.Errorf("foreign entry: %v", it)
		}
	}
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"key adds", "action=ssh_key.add", 2},
		{"failures", "result=failure", 1},
		{"successful key adds", "action=ssh_key.add&result=success", 1},
		{"prefix", "action=ssh_key", 2},
		{"nothing", "action=vm.", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.want(http.StatusOK, "GET", "/api/v1/audit?"+tc.query, tok, nil)
			if res["total"] != float64(tc.want) || len(items(res)) != tc.want {
				t.Errorf("%s: %v", tc.query, res)
			}
		})
	}
	e.t = t
	got := obj(items(e.want(http.StatusOK, "GET", "/api/v1/audit?result=failure", tok, nil))[0])
	if got["action"] != "ssh_key.add" || got["actor_email"] != "a@audited.example" || got["detail"] == "" || got["target_type"] != "ssh_key" {
		t.Errorf("failure entry: %v", got)
	}
	e.wantErr(http.StatusBadRequest, "bad_request", "result", "GET", "/api/v1/audit?result=maybe", tok, nil)
}

// TestAPIFlowPostgres runs the customer's path on PostgreSQL.
func TestAPIFlowPostgres(t *testing.T) {
	e := newEnvOn(t, pgtest.DSN(t))
	tok := e.customer("Pg Corp", "pg@pg.example")
	e.image("debian-12")
	key := e.addKey(tok, "laptop")
	id := e.order(tok, "db-1", "medium", "debian-12", key)
	list := e.want(http.StatusOK, "GET", "/api/v1/vms", tok, nil)
	if list["total"] != float64(1) || obj(items(list)[0])["id"] != id || obj(items(list)[0])["ssh_keys"].([]any)[0] != key {
		t.Errorf("list: %v", list)
	}
	q := e.want(http.StatusOK, "GET", "/api/v1/quota", tok, nil)
	if obj(q["used"])["vcpus"] != float64(2) || obj(q["used"])["ssh_keys"] != float64(1) {
		t.Errorf("quota: %v", q)
	}
	e.want(http.StatusAccepted, "DELETE", "/api/v1/vms/"+id, tok, nil)
	admin := e.staff(store.RoleAdmin)
	vms := e.want(http.StatusOK, "GET", "/api/v1/admin/vms?tenant=pg", admin, nil)
	if vms["total"] != float64(1) || obj(items(vms)[0])["tenant_name"] != "Pg Corp" {
		t.Errorf("admin vms: %v", vms)
	}
}
