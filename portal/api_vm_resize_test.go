package portal

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// settleVM plays the provisioner: the VM's queued operations are carried
// out and it is running.
func settleVM(t testing.TB, e *env, vmID string) {
	t.Helper()
	ctx := context.Background()
	vm, ok, err := e.st.ClaimVM(ctx, "test-worker", time.Minute)
	if err != nil || !ok || vm.ID != vmID {
		t.Fatalf("claim %s: got %s %v %v", vmID, vm.ID, ok, err)
	}
	if err := e.st.SetVMState(ctx, vmID, "test-worker", store.VMRunning, ""); err != nil {
		t.Fatal(err)
	}
	for {
		op, ok, err := e.st.NextOperation(ctx, vmID)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if err := e.st.StartOperation(ctx, op.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.st.FinishOperation(ctx, op.ID, store.OpDone, "done"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.FinishWork(ctx, vmID, "test-worker", true, 0); err != nil {
		t.Fatal(err)
	}
}

// TestAPIVMResizeAndRebuild changes a VM's plan and image through
// POST /vms/{id}/actions: bad input is refused with the error shape and
// changes nothing, other tenants get 404 and read-only callers 403.
func TestAPIVMResizeAndRebuild(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Growing", "g@growing.example")
	other := e.customer("Nosy", "n@nosy.example")
	reader := e.member(tok, "r@growing.example", store.RoleReadOnly)
	readScope := e.apiToken(tok, store.ScopeRead)
	e.image("debian-12")
	marked := e.image("debian-12-marked")
	key := e.addKey(tok, "k")
	id := e.order(tok, "web", "nano", "debian-12", key)
	settleVM(t, e, id)
	path := "/api/v1/vms/" + id + "/actions"

	type facts struct {
		plan, image string
		memory      float64
		ops         int
	}
	factsNow := func() facts {
		d := e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil)
		return facts{obj(d["plan"])["name"].(string), obj(d["image"])["name"].(string), d["memory_mib"].(float64), len(d["operations"].([]any))}
	}
	before := factsNow()
	tenantID, _ := e.account(tok)
	for _, tc := range []struct {
		name        string
		token       string
		body        map[string]any
		status      int
		code, field string
	}{
		{"read-only member", reader, map[string]any{"type": "resize", "plan": "small"}, 403, "forbidden", ""},
		{"read-only token", readScope, map[string]any{"type": "resize", "plan": "small"}, 403, "forbidden", ""},
		{"another tenant's VM", other, map[string]any{"type": "resize", "plan": "small"}, 404, "not_found", ""},
		{"another tenant's VM, rebuild", other, map[string]any{"type": "rebuild", "image": marked.ID}, 404, "not_found", ""},
		{"resize without a plan", tok, map[string]any{"type": "resize"}, 422, "invalid", "plan"},
		{"unknown plan", tok, map[string]any{"type": "resize", "plan": "huge"}, 422, "invalid", "plan"},
		{"the plan it has", tok, map[string]any{"type": "resize", "plan": "nano"}, 422, "invalid", "plan"},
		{"a plan with start", tok, map[string]any{"type": "start", "plan": "small"}, 422, "invalid", "plan"},
		{"an image with resize", tok, map[string]any{"type": "resize", "plan": "small", "image": marked.ID}, 422, "invalid", "image"},
		{"unknown image", tok, map[string]any{"type": "rebuild", "image": "windows"}, 422, "invalid", "image"},
		{"plan is not a string", tok, map[string]any{"type": "resize", "plan": 2}, 400, "bad_request", "plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", path, tc.token, tc.body)
			if got := factsNow(); got != before {
				t.Errorf("a refused request changed the VM: %+v → %+v", before, got)
			}
		})
	}
	e.t = t
	t.Run("over quota", func(t *testing.T) {
		e.t = t
		if err := e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, tenantID,
			store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 1024, DiskGiB: 100, SSHKeys: 5}); err != nil {
			t.Fatal(err)
		}
		code, body := e.api("POST", path, tok, map[string]any{"type": "resize", "plan": "small"})
		c, f := apiErr(body)
		if msg, _ := obj(body["error"])["message"].(string); code != 422 || c != "quota_exceeded" || f != "plan" ||
			msg != "the small plan needs 2 GiB RAM; your quota leaves 1 GiB for this VM" {
			t.Errorf("%d %s %s %q", code, c, f, msg)
		}
		if got := factsNow(); got != before {
			t.Errorf("a refused resize changed the VM: %+v → %+v", before, got)
		}
		if err := e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, tenantID,
			store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 5}); err != nil {
			t.Fatal(err)
		}
	})
	e.t = t

	op := e.want(http.StatusAccepted, "POST", path, tok, map[string]any{"type": "resize", "plan": "small"})
	if op["type"] != store.OpResize || op["state"] != store.OpQueued || op["requested_by"] != "g@growing.example" {
		t.Errorf("resize operation: %v", op)
	}
	d := e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil)
	if obj(d["plan"])["name"] != "small" || d["memory_mib"] != float64(2048) || d["disk_gib"] != float64(20) {
		t.Errorf("after resize: %v", d)
	}
	e.wantErr(http.StatusConflict, "conflict", "type", "POST", path, tok, map[string]any{"type": "resize", "plan": "medium"})
	settleVM(t, e, id)
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "plan", "POST", path, tok, map[string]any{"type": "resize", "plan": "nano"})

	op = e.want(http.StatusAccepted, "POST", path, tok, map[string]any{"type": "rebuild", "image": "debian-12-marked"})
	if op["type"] != store.OpRebuild {
		t.Errorf("rebuild operation: %v", op)
	}
	d = e.want(http.StatusOK, "GET", "/api/v1/vms/"+id, tok, nil)
	if obj(d["image"])["name"] != "debian-12-marked" || d["name"] != "web" || obj(d["plan"])["name"] != "small" {
		t.Errorf("after rebuild from another image: %v", d)
	}

	audit := e.want(http.StatusOK, "GET", "/api/v1/audit?action=vm.re&result=success", tok, nil)
	var got []string
	for _, it := range items(audit) {
		got = append(got, obj(it)["action"].(string)+": "+obj(it)["detail"].(string))
	}
	if len(got) != 2 || got[0] != "vm.rebuild: image debian-12 → debian-12-marked" || got[1] != "vm.resize: plan nano → small" {
		t.Errorf("audit: %q", got)
	}
}
