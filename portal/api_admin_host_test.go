package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// hostID returns the id of a host by name.
func hostID(t *testing.T, e *env, name string) string {
	t.Helper()
	h, err := e.st.GetHost(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// tinyHost takes the big test host out of service and registers a small,
// discovered one: 4 cores, 6400 MiB, 500 GiB at the default ratios.
func tinyHost(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	a := store.Actor{Email: "test"}
	big, err := e.st.GetHost(ctx, "kvm-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.UpdateHost(ctx, a, big.ID, store.HostSettings{CPURatio: big.CPURatio, MemoryRatio: big.MemoryRatio,
		DiskRatio: big.DiskRatio, Maintenance: true, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h, err := e.st.CreateHost(ctx, a, store.HostInput{Name: "tiny", URI: "test:///default"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.RecordHostFacts(ctx, h.ID, store.Facts{CPUModel: "test", Cores: 4, MemoryMiB: 6400, DiskGiB: 500, DiskFreeGiB: 500}, ""); err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// failVM plays the provisioner giving up on a VM: a failed step with a
// staff-only detail, then state error.
func failVM(t testing.TB, e *env, vmID string) {
	t.Helper()
	ctx := context.Background()
	// Other due VMs claimed on the way stay leased for a minute; tests do
	// not run a provisioner, so nobody minds.
	for {
		vm, ok, err := e.st.ClaimVM(ctx, "test-worker", time.Minute)
		if err != nil || !ok {
			t.Fatalf("claim %s: %v %v", vmID, ok, err)
		}
		if vm.ID == vmID {
			break
		}
	}
	step, err := e.st.StartStep(ctx, vmID, "define", "Creating the VM")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishStep(ctx, step, store.StepFailed, "Could not create the VM", "virsh: internal error secret-detail-42"); err != nil {
		t.Fatal(err)
	}
	gaveUp, err := e.st.FailAttempt(ctx, vmID, "test-worker", "define", errors.New("libvirt refused"), 1, nil)
	if err != nil || !gaveUp {
		t.Fatalf("fail attempt: %v %v", gaveUp, err)
	}
}

func TestAPIAdminHosts(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	operator := e.staff(store.RoleOperator)
	auditor := e.staff(store.RoleAuditor)
	cust := e.customer("Buyer", "b@buyer.example")

	h := e.want(http.StatusCreated, "POST", "/api/v1/admin/hosts", admin, map[string]any{
		"name": "KVM-2", "uri": "qemu+ssh://root@kvm-2.example.net/system", "cpu_ratio": 2.5, "reserved_memory_mib": 1024, "bridge": "br0",
	})
	if h["name"] != "kvm-2" || h["state"] != store.HostNew || h["enabled"] != true || h["maintenance"] != false ||
		obj(h["ratios"])["cpu"] != 2.5 || obj(h["ratios"])["memory"] != 1.0 || obj(h["reserved"])["memory_mib"] != float64(1024) ||
		h["storage_pool"] != "default" || h["ssh_host_key_fingerprint"] != "" || h["refreshed_at"] != nil || h["vm_count"] != float64(0) {
		t.Errorf("created: %v", h)
	}
	id := h["id"].(string)

	for _, tc := range []struct {
		name, method, path, token string
		body                      map[string]any
		status                    int
		code, field               string
	}{
		{"cpu ratio too high", "POST", "", admin, map[string]any{"name": "x1", "uri": "test:///default", "cpu_ratio": 17}, 422, "invalid", "cpu_ratio"},
		{"memory ratio too low", "POST", "", admin, map[string]any{"name": "x1", "uri": "test:///default", "memory_ratio": 0.1}, 422, "invalid", "memory_ratio"},
		{"negative reservation", "POST", "", admin, map[string]any{"name": "x1", "uri": "test:///default", "reserved_cores": -1}, 422, "invalid", "reserved_cores"},
		{"bad uri", "POST", "", admin, map[string]any{"name": "x1", "uri": "http://x"}, 422, "invalid", "uri"},
		{"password in uri", "POST", "", admin, map[string]any{"name": "x1", "uri": "qemu+ssh://root:pw@h/system"}, 422, "invalid", "uri"},
		{"bad name", "POST", "", admin, map[string]any{"name": "no spaces", "uri": "test:///default"}, 422, "invalid", "name"},
		{"unknown field", "POST", "", admin, map[string]any{"name": "x1", "uri": "test:///default", "cores": 4}, 400, "bad_request", "cores"},
		{"duplicate name", "POST", "", admin, map[string]any{"name": "kvm-2", "uri": "test:///default"}, 409, "conflict", "name"},
		{"operator may not add", "POST", "", operator, map[string]any{"name": "x1", "uri": "test:///default"}, 403, "forbidden", ""},
		{"auditor may not add", "POST", "", auditor, map[string]any{"name": "x1", "uri": "test:///default"}, 403, "forbidden", ""},
		{"customer sees nothing", "GET", "", cust, nil, 404, "not_found", ""},
		{"customer cannot add", "POST", "", cust, map[string]any{"name": "x1", "uri": "test:///default"}, 404, "not_found", ""},
		{"unauthenticated", "GET", "", "", nil, 401, "unauthenticated", ""},
		{"unauthenticated add", "POST", "", "", map[string]any{"name": "x1", "uri": "test:///default"}, 401, "unauthenticated", ""},
		{"patch bad ratio", "PATCH", "/" + id, admin, map[string]any{"disk_ratio": 11}, 422, "invalid", "disk_ratio"},
		{"patch unknown host", "PATCH", "/nope", admin, map[string]any{"maintenance": true}, 404, "not_found", ""},
		{"operator may not patch", "PATCH", "/" + id, operator, map[string]any{"maintenance": true}, 403, "forbidden", ""},
		{"auditor may not delete", "DELETE", "/" + id, auditor, nil, 403, "forbidden", ""},
		{"get unknown", "GET", "/nope", admin, nil, 404, "not_found", ""},
		{"delete unknown", "DELETE", "/nope", admin, nil, 404, "not_found", ""},
		{"customer cannot get", "GET", "/" + id, cust, nil, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			var body any
			if tc.body != nil {
				body = tc.body
			}
			e.wantErr(tc.status, tc.code, tc.field, tc.method, "/api/v1/admin/hosts"+tc.path, tc.token, body)
		})
	}
	e.t = t
	// Nothing the refusals asked for happened.
	if l := items(e.want(http.StatusOK, "GET", "/api/v1/admin/hosts", auditor, nil)); len(l) != 2 {
		t.Errorf("hosts after refusals: %v", l)
	}
	if got := e.want(http.StatusOK, "GET", "/api/v1/admin/hosts/"+id, auditor, nil); obj(got["ratios"])["disk"] != 1.0 || got["maintenance"] != false {
		t.Errorf("refused patch changed the host: %v", got)
	}

	// A partial patch changes only what it names.
	p := e.want(http.StatusOK, "PATCH", "/api/v1/admin/hosts/"+id, admin, map[string]any{"maintenance": true, "memory_ratio": 1.5})
	if p["maintenance"] != true || p["enabled"] != true || obj(p["ratios"])["memory"] != 1.5 || obj(p["ratios"])["cpu"] != 2.5 ||
		obj(p["reserved"])["memory_mib"] != float64(1024) {
		t.Errorf("patched: %v", p)
	}
	// By name too.
	if g := e.want(http.StatusOK, "GET", "/api/v1/admin/hosts/kvm-2", admin, nil); g["id"] != id {
		t.Errorf("get by name: %v", g)
	}

	// Capacity figures of the discovered test host.
	ctx := context.Background()
	if err := e.st.RecordHostFacts(ctx, id, store.Facts{CPUModel: "EPYC", Cores: 8, MemoryMiB: 16384, DiskGiB: 1000, DiskFreeGiB: 900},
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"); err != nil {
		t.Fatal(err)
	}
	g := e.want(http.StatusOK, "GET", "/api/v1/admin/hosts/"+id, admin, nil)
	cpu, mem := obj(obj(g["capacity"])["cpu"]), obj(obj(g["capacity"])["memory"])
	if cpu["physical"] != float64(8) || cpu["overcommitted"] != float64(20) || cpu["free"] != float64(20) || cpu["ratio"] != 2.5 ||
		mem["overcommitted"] != float64(24576) || mem["reserved"] != float64(1024) || mem["free"] != float64(23552) ||
		g["state"] != store.HostReady || g["cpu_model"] != "EPYC" || g["refreshed_at"] == nil {
		t.Errorf("discovered host: %v", g)
	}
	if fp, _ := g["ssh_host_key_fingerprint"].(string); !strings.HasPrefix(fp, "SHA256:") || strings.Contains(fp, "AAAA") {
		t.Errorf("fingerprint %q", fp)
	}

	// A host holding a VM cannot be deleted; an empty one can.
	e.image("debian-12")
	key := e.addKey(cust, "laptop")
	kvm1 := hostID(t, e, "kvm-1")
	e.order(cust, "web", "nano", "debian-12", key)
	e.wantErr(http.StatusConflict, "conflict", "", "DELETE", "/api/v1/admin/hosts/"+kvm1, admin, nil)
	if l := e.want(http.StatusOK, "GET", "/api/v1/admin/hosts/"+kvm1, admin, nil); l["vm_count"] != float64(1) {
		t.Errorf("kvm-1 after order: %v", l)
	}
	if code, _ := e.api("DELETE", "/api/v1/admin/hosts/"+id, admin, nil); code != http.StatusNoContent {
		t.Errorf("delete empty host: %d", code)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/admin/hosts/"+id, admin, nil)
}

func TestAPIAdminSubnets(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	operator := e.staff(store.RoleOperator)
	auditor := e.staff(store.RoleAuditor)
	cust := e.customer("Buyer", "b@buyer.example")
	body := map[string]any{"name": "public-1", "cidr": "192.0.2.0/24", "gateway": "192.0.2.1", "dns_servers": []string{"192.0.2.53"},
		"range_start": "192.0.2.10", "range_end": "192.0.2.19"}
	sn := e.want(http.StatusCreated, "POST", "/api/v1/admin/subnets", admin, body)
	if sn["cidr"] != "192.0.2.0/24" || sn["size"] != float64(10) || sn["used"] != float64(0) || sn["free"] != float64(10) ||
		len(sn["dns_servers"].([]any)) != 1 {
		t.Errorf("created: %v", sn)
	}
	id := sn["id"].(string)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range body {
			m[kk] = vv
		}
		m["name"] = "other"
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, field               string
	}{
		{"bad cidr", "POST", "", admin, with("cidr", "192.0.2.1/24"), 422, "invalid", "cidr"},
		{"gateway outside", "POST", "", admin, with("cidr", "198.51.100.0/24"), 422, "invalid", "gateway"},
		{"overlap", "POST", "", admin, with("range_start", "192.0.2.11"), 409, "conflict", "cidr"},
		{"duplicate name", "POST", "", admin, map[string]any{"name": "public-1", "cidr": "198.51.100.0/24", "range_start": "198.51.100.10", "range_end": "198.51.100.20"}, 409, "conflict", "name"},
		{"operator may not add", "POST", "", operator, with("cidr", "198.51.100.0/24"), 403, "forbidden", ""},
		{"auditor may not delete", "DELETE", "/" + id, auditor, nil, 403, "forbidden", ""},
		{"customer sees nothing", "GET", "", cust, nil, 404, "not_found", ""},
		{"unauthenticated", "GET", "", "", nil, 401, "unauthenticated", ""},
		{"delete unknown", "DELETE", "/nope", admin, nil, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, tc.method, "/api/v1/admin/subnets"+tc.path, tc.token, tc.body)
		})
	}
	e.t = t
	l := items(e.want(http.StatusOK, "GET", "/api/v1/admin/subnets", auditor, nil))
	if len(l) != 1 {
		t.Fatalf("subnets after refusals: %v", l)
	}
	// An address in use blocks the delete.
	e.image("debian-12")
	vm := e.order(cust, "web", "nano", "debian-12", e.addKey(cust, "laptop"))
	if _, err := e.st.AllocateIP(context.Background(), vm); err != nil {
		t.Fatal(err)
	}
	if got := obj(items(e.want(http.StatusOK, "GET", "/api/v1/admin/subnets", admin, nil))[0]); got["used"] != float64(1) || got["free"] != float64(9) {
		t.Errorf("usage: %v", got)
	}
	e.wantErr(http.StatusConflict, "conflict", "", "DELETE", "/api/v1/admin/subnets/"+id, admin, nil)
	if err := e.st.ReleaseIP(context.Background(), vm); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.api("DELETE", "/api/v1/admin/subnets/"+id, admin, nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
}

func TestAPIAdminVMRetryAndHost(t *testing.T) {
	e := newEnv(t)
	admin := e.staff(store.RoleAdmin)
	operator := e.staff(store.RoleOperator)
	auditor := e.staff(store.RoleAuditor)
	cust := e.customer("Buyer", "b@buyer.example")
	e.image("debian-12")
	vm := e.order(cust, "web", "nano", "debian-12", e.addKey(cust, "laptop"))

	l := items(e.want(http.StatusOK, "GET", "/api/v1/admin/vms", admin, nil))
	if len(l) != 1 || obj(obj(l[0])["host"])["name"] != "kvm-1" || obj(l[0])["dns_name"] != "web.buyer.cloud.internal" {
		t.Errorf("admin vm list: %v", l)
	}
	// Not in state error yet.
	e.wantErr(http.StatusConflict, "invalid_state", "", "POST", "/api/v1/admin/vms/"+vm+"/retry", admin, nil)
	failVM(t, e, vm)
	for _, tc := range []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"auditor", vm, auditor, 403, "forbidden"},
		{"customer", vm, cust, 404, "not_found"},
		{"unauthenticated", vm, "", 401, "unauthenticated"},
		{"unknown vm", "nope", operator, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, "", "POST", "/api/v1/admin/vms/"+tc.path+"/retry", tc.token, nil)
		})
	}
	e.t = t
	if d := e.want(http.StatusOK, "GET", "/api/v1/vms/"+vm, cust, nil); d["state"] != store.VMError {
		t.Fatalf("refused retries changed the VM: %v", d)
	}
	r := e.want(http.StatusAccepted, "POST", "/api/v1/admin/vms/"+vm+"/retry", operator, nil)
	if r["id"] != vm || r["tenant_name"] != "Buyer" || obj(r["host"])["name"] != "kvm-1" {
		t.Errorf("retry answer: %v", r)
	}
	d := e.want(http.StatusOK, "GET", "/api/v1/vms/"+vm, cust, nil)
	tl := d["timeline"].([]any)
	if last := obj(tl[len(tl)-1]); last["step"] != "retry" {
		t.Errorf("timeline after retry: %v", tl)
	}
	if strings.Contains(strings.ToLower(jsonText(d)), "secret-detail-42") {
		t.Errorf("customer API shows the staff-only detail: %v", d)
	}
}

func TestAPIPlansConsiderCapacity(t *testing.T) {
	e := newEnv(t)
	cust := e.customer("Buyer", "b@buyer.example")
	admin := e.staff(store.RoleAdmin)
	tinyHost(t, e)
	fits := func(token string) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, p := range items(e.want(http.StatusOK, "GET", "/api/v1/plans", token, nil)) {
			out[obj(p)["name"].(string)] = obj(p)
		}
		return out
	}
	got := fits(cust)
	if got["medium"]["fits"] != true || got["large"]["fits"] != false {
		t.Fatalf("plans: %v", got)
	}
	if r := got["large"]["reason"]; r != "no host has 8 GiB RAM free; best has 6.2 GiB at 1.0× memory overcommit" {
		t.Errorf("capacity reason %q", r)
	}
	if got := fits(admin); got["large"]["fits"] != false {
		t.Errorf("staff plans: %v", got)
	}
	// The quota reason wins when both apply.
	tenantID, _ := e.account(cust)
	if err := e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, tenantID,
		store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 4096, DiskGiB: 200, SSHKeys: 10, PortForwards: 5}); err != nil {
		t.Fatal(err)
	}
	if r, _ := fits(cust)["large"]["reason"].(string); r == "" || strings.Contains(r, "no host") {
		t.Errorf("reason with quota and capacity short: %q", r)
	}
	// Ordering it anyway is refused.
	e.image("debian-12")
	if err := e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, tenantID,
		store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 10, PortForwards: 5}); err != nil {
		t.Fatal(err)
	}
	e.wantErr(http.StatusUnprocessableEntity, "no_capacity", "plan", "POST", "/api/v1/vms", cust,
		map[string]any{"name": "big", "plan": "large", "image": "debian-12", "ssh_keys": []string{e.addKey(cust, "k")}})
}

// jsonText is a decoded body as JSON text, for substring checks.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
