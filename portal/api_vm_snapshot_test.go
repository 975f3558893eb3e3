package portal

import (
	"context"
	"net/http"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestAPIVMSnapshots takes, lists, restores and deletes snapshots through
// /vms/{id}/snapshots: bad names and quota are refused with the error
// shape and change nothing, other tenants get 404 and read-only callers 403.
func TestAPIVMSnapshots(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.customer("Snappy", "s@snappy.example")
	other := e.customer("Nosy", "n@nosy.example")
	reader := e.member(tok, "r@snappy.example", store.RoleReadOnly)
	readScope := e.apiToken(tok, store.ScopeRead)
	admin := e.staff(store.RoleAdmin)
	e.image("debian-12")
	key := e.addKey(tok, "k")
	id := e.order(tok, "web", "nano", "debian-12", key)
	settleVM(t, e, id)
	tenantID, _ := e.account(tok)
	list := "/api/v1/vms/" + id + "/snapshots"

	if got := items(e.want(http.StatusOK, "GET", list, tok, nil)); len(got) != 0 {
		t.Fatalf("a new VM has snapshots: %v", got)
	}
	for _, tc := range []struct {
		name        string
		token       string
		body        map[string]any
		status      int
		code, field string
	}{
		{"read-only member", reader, map[string]any{"name": "a"}, 403, "forbidden", ""},
		{"read-only token", readScope, map[string]any{"name": "a"}, 403, "forbidden", ""},
		{"another tenant's VM", other, map[string]any{"name": "a"}, 404, "not_found", ""},
		{"no name", tok, map[string]any{}, 422, "invalid", "name"},
		{"bad name", tok, map[string]any{"name": "../etc"}, 422, "invalid", "name"},
		{"name is not a string", tok, map[string]any{"name": 3}, 400, "bad_request", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.wantErr(tc.status, tc.code, tc.field, "POST", list, tc.token, tc.body)
		})
	}
	if got := items(e.want(http.StatusOK, "GET", list, tok, nil)); len(got) != 0 {
		t.Fatalf("refusals made snapshots: %v", got)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", list, other, nil)

	// Staff set the snapshot quota; leaving the figures out keeps them.
	quota := map[string]any{"instances": 5, "vcpus": 8, "memory_mib": 16384, "disk_gib": 200, "ssh_keys": 5, "port_forwards": 5, "snapshots": 1, "snapshot_gib": 100}
	e.want(http.StatusOK, "PUT", "/api/v1/admin/tenants/"+tenantID+"/quota", admin, quota)
	delete(quota, "snapshots")
	delete(quota, "snapshot_gib")
	e.want(http.StatusOK, "PUT", "/api/v1/admin/tenants/"+tenantID+"/quota", admin, quota)
	if l := obj(e.want(http.StatusOK, "GET", "/api/v1/quota", tok, nil)["limits"]); l["snapshots"] != 1.0 || l["snapshot_gib"] != 100.0 {
		t.Fatalf("quota limits after a PUT without snapshot figures: %v", l)
	}

	taken := e.want(http.StatusAccepted, "POST", list, tok, map[string]any{"name": "before-upgrade"})
	snap := obj(taken["snapshot"])
	if snap["state"] != store.SnapshotCreating || obj(taken["operation"])["type"] != store.OpSnapshot {
		t.Fatalf("snapshot request answered %v", taken)
	}
	sid := snap["id"].(string)
	one := list + "/" + sid
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/vms/"+id+"/snapshots/nope", tok, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", one, other, nil)
	e.wantErr(http.StatusConflict, "conflict", "type", "POST", one+"/restore", tok, nil) // the take is still queued
	// The provisioner copies the disk.
	settleVM(t, e, id)
	if err := e.st.SnapshotTaken(ctx, sid, 3<<20, store.ConsistencyStopped); err != nil {
		t.Fatal(err)
	}
	got := e.want(http.StatusOK, "GET", one, tok, nil)
	if got["state"] != store.SnapshotReady || got["size_bytes"] != float64(3<<20) || got["ready_at"] == nil {
		t.Errorf("ready snapshot %v", got)
	}
	if u := obj(e.want(http.StatusOK, "GET", "/api/v1/quota", tok, nil)["used"]); u["snapshots"] != 1.0 || u["snapshot_gib"] != 1.0 {
		t.Errorf("snapshot usage %v", u)
	}
	code, body := e.api("POST", list, tok, map[string]any{"name": "second"})
	if c, f := apiErr(body); code != 422 || c != "quota_exceeded" || f != "name" {
		t.Errorf("over the count quota: %d %v", code, body)
	}

	for _, tok := range []string{reader, readScope} {
		e.wantErr(http.StatusForbidden, "forbidden", "", "POST", one+"/restore", tok, nil)
		e.wantErr(http.StatusForbidden, "forbidden", "", "DELETE", one, tok, nil)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "POST", one+"/restore", other, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", one, other, nil)
	if op := e.want(http.StatusAccepted, "POST", one+"/restore", tok, nil); op["type"] != store.OpRestore {
		t.Errorf("restore answered %v", op)
	}
	if got := e.want(http.StatusOK, "GET", one, tok, nil); got["state"] != store.SnapshotRestoring {
		t.Errorf("restoring snapshot %v", got)
	}
	settleVM(t, e, id)
	if err := e.st.SnapshotSettled(ctx, sid, ""); err != nil {
		t.Fatal(err)
	}
	if op := e.want(http.StatusAccepted, "DELETE", one, tok, nil); op["type"] != store.OpSnapshotDelete {
		t.Errorf("delete answered %v", op)
	}
	settleVM(t, e, id)
	if err := e.st.SnapshotGone(ctx, sid); err != nil {
		t.Fatal(err)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", one, tok, nil)
	if got := items(e.want(http.StatusOK, "GET", list, tok, nil)); len(got) != 0 {
		t.Errorf("deleted snapshot listed: %v", got)
	}
}
