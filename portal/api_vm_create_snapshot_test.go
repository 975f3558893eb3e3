package portal

import (
	"context"
	"net/http"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestAPIVMCreateFromSnapshot orders VMs from a snapshot through POST
// /vms: image and snapshot exclude each other, another tenant's snapshot
// is no such snapshot, a plan smaller than the snapshot's disk is refused,
// read-only callers get 403, and refusals order nothing.
func TestAPIVMCreateFromSnapshot(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.customer("Copier", "c@copier.example")
	other := e.customer("Nosy", "n@nosy2.example")
	reader := e.member(tok, "r@copier.example", store.RoleReadOnly)
	readScope := e.apiToken(tok, store.ScopeRead)
	e.image("debian-12")
	key := e.addKey(tok, "k")
	otherKey := e.addKey(other, "k")
	id := e.order(tok, "web", "small", "debian-12", key)
	settleVM(t, e, id)
	taken := e.want(http.StatusAccepted, "POST", "/api/v1/vms/"+id+"/snapshots", tok, map[string]any{"name": "gold"})
	sid := obj(taken["snapshot"])["id"].(string)
	settleVM(t, e, id)
	if err := e.st.SnapshotTaken(ctx, sid, 3<<20, store.ConsistencyStopped); err != nil {
		t.Fatal(err)
	}

	body := func(plan string, extra map[string]any) map[string]any {
		b := map[string]any{"name": "copy", "plan": plan, "ssh_keys": []string{key}}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	for _, tc := range []struct {
		name        string
		token       string
		body        map[string]any
		status      int
		code, field string
	}{
		{"read-only member", reader, body("small", map[string]any{"snapshot": sid}), 403, "forbidden", ""},
		{"read-only token", readScope, body("small", map[string]any{"snapshot": sid}), 403, "forbidden", ""},
		{"image and snapshot", tok, body("small", map[string]any{"snapshot": sid, "image": "debian-12"}), 422, "invalid", "snapshot"},
		{"neither", tok, body("small", nil), 422, "invalid", "image"},
		{"unknown snapshot", tok, body("small", map[string]any{"snapshot": "nope"}), 422, "invalid", "snapshot"},
		{"plan smaller than the snapshot's disk", tok, body("nano", map[string]any{"snapshot": sid}), 422, "invalid", "plan"},
		{"snapshot is not a string", tok, body("small", map[string]any{"snapshot": 3}), 400, "bad_request", "snapshot"},
		{"another tenant's snapshot", other, map[string]any{"name": "copy", "plan": "small", "snapshot": sid, "ssh_keys": []string{otherKey}}, 422, "invalid", "snapshot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/vms", tc.token, tc.body)
		})
	}
	_, res := e.api("POST", "/api/v1/vms", other, map[string]any{"name": "copy", "plan": "small", "snapshot": sid, "ssh_keys": []string{otherKey}})
	if msg, _ := obj(res["error"])["message"].(string); msg != "no such snapshot" {
		t.Errorf("another tenant's snapshot: %v, want \"no such snapshot\" as for an unknown one", res)
	}
	for _, token := range []string{tok, other} {
		if got := items(e.want(http.StatusOK, "GET", "/api/v1/vms", token, nil)); len(got) != map[string]int{tok: 1, other: 0}[token] {
			t.Fatalf("refusals ordered VMs: %v", got)
		}
	}

	vm := e.want(http.StatusCreated, "POST", "/api/v1/vms", tok, body("small", map[string]any{"snapshot": sid}))
	if vm["state"] != store.VMPending || obj(vm["image"])["name"] != "debian-12" || vm["source_snapshot_id"] != sid {
		t.Errorf("VM from a snapshot: %v", vm)
	}
	if got := e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil); got["source_snapshot_id"] != "" {
		t.Errorf("VM from an image has source_snapshot_id %v", got["source_snapshot_id"])
	}
	// Another tenant cannot see it.
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/vms/"+vm["id"].(string), other, nil)
	// Until its disk is copied the snapshot stays.
	e.wantErr(http.StatusConflict, "conflict", "snapshot", "DELETE", "/api/v1/vms/"+id+"/snapshots/"+sid, tok, nil)
}
