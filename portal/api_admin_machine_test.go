package portal

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// bmcPassword is the BMC password the machine tests enter; it must never
// come back out of the portal.
const bmcPassword = "Sup3r-BMC-pa55word"

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLoggedEnv is newEnv with every log line, debug included, captured.
func newLoggedEnv(t *testing.T) (*env, *lockedBuffer) {
	t.Helper()
	ctx := context.Background()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fibrix.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, Config{PasswordCost: 4, Version: "test"}, st, log)
	if err != nil {
		t.Fatal(err)
	}
	addHost(t, st)
	return &env{t: t, srv: srv, st: st}, logs
}

func ipmiMachine(name string, macs ...string) map[string]any {
	return map[string]any{"name": name, "macs": macs,
		"power": map[string]any{"type": "ipmi", "address": "10.0.0.5", "port": 623, "user": "admin", "password": bmcPassword}}
}

// agentReport is a commissioning report as the agent sends it.
func agentReport(token, mac string) map[string]any {
	return map[string]any{"token": token, "mac": mac, "mode": "commission", "status": "ok",
		"inventory": map[string]any{
			"cpu":        map[string]any{"model": "AMD EPYC 7302P", "cores": 16, "threads": 32},
			"memory_mib": 131072,
			"disks":      []any{map[string]any{"name": "sda", "size_bytes": 960197124096, "model": "SAMSUNG MZ7LH960", "serial": "S45NNA0M123456", "rotational": false}},
			"nics":       []any{map[string]any{"name": "eno1", "mac": mac, "link": true, "speed_mbps": 10000}},
			"bmc":        map[string]any{"present": true, "note": "/dev/ipmi0"},
		}}
}

func TestAPIAdminMachines(t *testing.T) {
	e, logs := newLoggedEnv(t)
	admin := e.staff(store.RoleAdmin)
	operator := e.staff(store.RoleOperator)
	auditor := e.staff(store.RoleAuditor)
	cust := e.customer("Buyer", "b@buyer.example")
	var bodies []any
	keep := func(b map[string]any) map[string]any { bodies = append(bodies, b); return b }

	m := keep(e.want(http.StatusCreated, "POST", "/api/v1/admin/machines", admin, ipmiMachine("Node-1", "52-54-00-AA-00-01", "52:54:00:aa:00:02")))
	id := m["id"].(string)
	power := obj(m["power"])
	if m["name"] != "node-1" || m["state"] != "new" || power["type"] != "ipmi" || power["has_password"] != true ||
		obj(power["params"])["port"] != "623" || obj(power["params"])["password"] != nil || m["inventory"] != nil ||
		jsonText(m["macs"]) != `["52:54:00:aa:00:01","52:54:00:aa:00:02"]` || !strings.Contains(jsonText(m["actions"]), `"commission"`) {
		t.Errorf("created: %v", m)
	}
	// The column holds ciphertext that opens to the password.
	d, err := e.st.GetMachine(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.PowerSecret, bmcPassword) || !strings.HasPrefix(d.PowerSecret, "v1:") {
		t.Errorf("stored secret %q", d.PowerSecret)
	}
	if clear, err := e.srv.secrets.Open(d.PowerSecret); err != nil || clear != bmcPassword {
		t.Errorf("open stored secret: %q %v", clear, err)
	}

	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, field, msg          string
	}{
		{"bad mac", "POST", "", admin, ipmiMachine("n2", "52:54:00:zz:00:01"), 422, "invalid", "macs", ""},
		{"no mac", "POST", "", admin, map[string]any{"name": "n2", "power": map[string]any{"type": "manual"}}, 422, "invalid", "macs", ""},
		{"duplicate mac", "POST", "", admin, ipmiMachine("n2", "52:54:00:AA:00:02"), 409, "conflict", "macs", "node-1"},
		{"duplicate name", "POST", "", admin, ipmiMachine("node-1", "52:54:00:aa:00:09"), 409, "conflict", "name", ""},
		{"bad power type", "POST", "", admin, map[string]any{"name": "n2", "macs": []string{"52:54:00:aa:00:09"}, "power": map[string]any{"type": "magic"}}, 422, "invalid", "power_type", ""},
		{"ipmi needs address", "POST", "", admin, map[string]any{"name": "n2", "macs": []string{"52:54:00:aa:00:09"}, "power": map[string]any{"type": "ipmi"}}, 422, "invalid", "power_params", ""},
		{"nested power value", "POST", "", admin, map[string]any{"name": "n2", "macs": []string{"52:54:00:aa:00:09"}, "power": map[string]any{"type": "ipmi", "address": []int{1}}}, 400, "bad_request", "power.address", ""},
		{"unknown field", "POST", "", admin, map[string]any{"name": "n2", "macs": []string{"52:54:00:aa:00:09"}, "cores": 4}, 400, "bad_request", "cores", ""},
		{"operator may not enlist", "POST", "", operator, ipmiMachine("n2", "52:54:00:aa:00:09"), 403, "forbidden", "", ""},
		{"auditor may not enlist", "POST", "", auditor, ipmiMachine("n2", "52:54:00:aa:00:09"), 403, "forbidden", "", ""},
		{"customer sees nothing", "GET", "", cust, nil, 404, "not_found", "", ""},
		{"customer cannot get", "GET", "/" + id, cust, nil, 404, "not_found", "", ""},
		{"unauthenticated", "GET", "", "", nil, 401, "unauthenticated", "", ""},
		{"unauthenticated enlist", "POST", "", "", ipmiMachine("n2", "52:54:00:aa:00:09"), 401, "unauthenticated", "", ""},
		{"bad state filter", "GET", "?state=happy", admin, nil, 400, "bad_request", "state", ""},
		{"get unknown", "GET", "/nope", admin, nil, 404, "not_found", "", ""},
		{"patch unknown", "PATCH", "/nope", admin, map[string]any{"name": "x"}, 404, "not_found", "", ""},
		{"patch bad mac", "PATCH", "/" + id, admin, map[string]any{"macs": []string{"nope"}}, 422, "invalid", "macs", ""},
		{"operator may not patch", "PATCH", "/" + id, operator, map[string]any{"name": "x"}, 403, "forbidden", "", ""},
		{"auditor may not delete", "DELETE", "/" + id, auditor, nil, 403, "forbidden", "", ""},
		{"invalid transition", "POST", "/" + id + "/actions", operator, map[string]any{"type": "deploy", "image": "x", "disk": "sda"}, 409, "invalid_state", "", "it is new; deploy is possible only from ready"},
		{"release from new", "POST", "/" + id + "/actions", operator, map[string]any{"type": "release"}, 409, "invalid_state", "", "deployed or failed_deployment"},
		{"broken needs reason", "POST", "/" + id + "/actions", operator, map[string]any{"type": "mark_broken"}, 422, "invalid", "reason", ""},
		{"unknown action", "POST", "/" + id + "/actions", operator, map[string]any{"type": "explode"}, 422, "invalid", "type", ""},
		{"auditor may not act", "POST", "/" + id + "/actions", auditor, map[string]any{"type": "commission"}, 403, "forbidden", "", ""},
		{"customer may not act", "POST", "/" + id + "/actions", cust, map[string]any{"type": "commission"}, 404, "not_found", "", ""},
		{"unauthenticated act", "POST", "/" + id + "/actions", "", map[string]any{"type": "commission"}, 401, "unauthenticated", "", ""},
		{"act on unknown", "POST", "/nope/actions", operator, map[string]any{"type": "commission"}, 404, "not_found", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, res := e.api(tc.method, "/api/v1/admin/machines"+tc.path, tc.token, tc.body)
			c, f := apiErr(res)
			if code != tc.status || c != tc.code || f != tc.field || !strings.Contains(jsonText(res), tc.msg) {
				t.Errorf("%d %s field %q, want %d %s field %q mentioning %q: %v", code, c, f, tc.status, tc.code, tc.field, tc.msg, res)
			}
			keep(res)
		})
	}
	e.t = t
	// Nothing the refusals asked for happened.
	l := keep(e.want(http.StatusOK, "GET", "/api/v1/admin/machines", auditor, nil))
	if len(items(l)) != 1 || l["total"] != float64(1) {
		t.Errorf("machines after refusals: %v", l)
	}
	got := keep(e.want(http.StatusOK, "GET", "/api/v1/admin/machines/node-1", auditor, nil))
	if got["state"] != "new" || got["name"] != "node-1" || len(got["events"].([]any)) != 1 {
		t.Errorf("after refusals: %v", got)
	}

	// A patch without a password keeps it; one with a password replaces it.
	p := keep(e.want(http.StatusOK, "PATCH", "/api/v1/admin/machines/"+id, admin, map[string]any{"name": "node-a",
		"power": map[string]any{"type": "ipmi", "address": "10.0.0.6", "user": "root"}}))
	if p["name"] != "node-a" || obj(obj(p["power"])["params"])["address"] != "10.0.0.6" || obj(p["power"])["has_password"] != true {
		t.Errorf("patched: %v", p)
	}
	if d2, _ := e.st.GetMachine(context.Background(), id); d2.PowerSecret != d.PowerSecret {
		t.Error("a patch without password changed the stored secret")
	}
	keep(e.want(http.StatusOK, "PATCH", "/api/v1/admin/machines/"+id, admin, map[string]any{"power": map[string]any{"type": "ipmi", "address": "10.0.0.6", "password": bmcPassword + "2"}}))
	if d2, _ := e.st.GetMachine(context.Background(), id); d2.PowerSecret == d.PowerSecret || strings.Contains(d2.PowerSecret, bmcPassword) {
		t.Error("a new password was not sealed in")
	}

	// Actions answer 202 with the machine; power commands are events.
	a := keep(e.want(http.StatusAccepted, "POST", "/api/v1/admin/machines/"+id+"/actions", operator, map[string]any{"type": "power_on", "reason": "check fans"}))
	if a["state"] != "new" || !strings.Contains(jsonText(a["events"]), "power on requested by operator") {
		t.Errorf("power on: %v", a)
	}
	a = keep(e.want(http.StatusAccepted, "POST", "/api/v1/admin/machines/"+id+"/actions", operator, map[string]any{"type": "commission", "reason": "first look"}))
	if a["state"] != "commissioning" || !strings.Contains(jsonText(a["actions"]), "mark_broken") || strings.Contains(jsonText(a["actions"]), `"commission"`) {
		t.Errorf("commission: %v", a)
	}
	if l := keep(e.want(http.StatusOK, "GET", "/api/v1/admin/machines?state=commissioning", admin, nil)); len(items(l)) != 1 {
		t.Errorf("state filter: %v", l)
	}
	if l := keep(e.want(http.StatusOK, "GET", "/api/v1/admin/machines?state=ready", admin, nil)); len(items(l)) != 0 {
		t.Errorf("state filter: %v", l)
	}

	// The agent reports with its one-time token.
	ctx := context.Background()
	tok, err := e.st.IssueAgentToken(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	report := agentReport(tok, "52:54:00:aa:00:01")
	bad := agentReport(tok, "52:54:00:aa:00:01")
	obj(bad["inventory"])["memory_mib"] = 0
	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"unknown token", agentReport("forged", "52:54:00:aa:00:01"), 404},
		{"invalid report", bad, 422},
		{"not json", "{", 400},
		{"wrong mode", map[string]any{"token": tok, "mac": "52:54:00:aa:00:01", "mode": "deploy", "status": "ok"}, 404},
	} {
		t.Run("agent "+tc.name, func(t *testing.T) {
			e.t = t
			if code, res := e.api("POST", "/api/agent/v1/report", "", tc.body); code != tc.status {
				t.Errorf("status %d, want %d: %v", code, tc.status, res)
			}
		})
	}
	e.t = t
	if code, res := e.api("POST", "/api/agent/v1/report", "", report); code != http.StatusNoContent {
		t.Fatalf("report: %d %v", code, res)
	}
	if code, _ := e.api("POST", "/api/agent/v1/report", "", report); code != http.StatusNotFound {
		t.Errorf("token reused: %d", code)
	}
	r := keep(e.want(http.StatusOK, "GET", "/api/v1/admin/machines/"+id, admin, nil))
	inv := obj(r["inventory"])
	if r["state"] != "ready" || r["cores"] != float64(16) || r["memory_mib"] != float64(131072) || r["cpu_model"] != "AMD EPYC 7302P" ||
		obj(inv["cpu"])["threads"] != float64(32) || len(inv["disks"].([]any)) != 1 {
		t.Errorf("after report: %v", r)
	}

	// Deploy, then deletion is refused until released.
	if _, err := e.st.CreateImage(ctx, store.Actor{Email: "test"}, store.ImageInput{Name: "debian-12", OS: "Debian", Version: "12", Kind: store.ImageMachine,
		SourceURL: "http://10.9.0.1:8082/boot/images/debian-12.img.gz", Checksum: strings.Repeat("ab", 32), Enabled: true}); err != nil {
		t.Fatal(err)
	}
	dep := keep(e.want(http.StatusAccepted, "POST", "/api/v1/admin/machines/"+id+"/actions", operator, map[string]any{"type": "deploy", "image": "debian-12", "disk": "sda"}))
	if dep["state"] != "deploying" || dep["deploy_disk"] != "sda" {
		t.Errorf("deploy: %v", dep)
	}
	e.wantErr(http.StatusConflict, "invalid_state", "", "DELETE", "/api/v1/admin/machines/"+id, admin, nil)
	keep(e.want(http.StatusAccepted, "POST", "/api/v1/admin/machines/"+id+"/actions", operator, map[string]any{"type": "mark_broken", "reason": "disk smoke"}))
	if code, _ := e.api("DELETE", "/api/v1/admin/machines/"+id, admin, nil); code != http.StatusNoContent {
		t.Errorf("delete broken: %d", code)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/admin/machines/"+id, admin, nil)

	// Discovered MACs, enlisted in one call.
	if err := e.st.RecordDiscovered(ctx, "52:54:00:bb:00:01", "", "PXEClient:Arch:00007", 7, ""); err != nil {
		t.Fatal(err)
	}
	dl := keep(e.want(http.StatusOK, "GET", "/api/v1/admin/discovered", auditor, nil))
	if len(items(dl)) != 1 || obj(items(dl)[0])["mac"] != "52:54:00:bb:00:01" || obj(items(dl)[0])["arch"] != float64(7) {
		t.Errorf("discovered: %v", dl)
	}
	e.wantErr(http.StatusForbidden, "forbidden", "", "POST", "/api/v1/admin/discovered/52:54:00:bb:00:01/enlist", operator, map[string]any{"name": "found"})
	e.wantErr(http.StatusNotFound, "not_found", "", "POST", "/api/v1/admin/discovered/52:54:00:bb:00:09/enlist", admin, map[string]any{"name": "found"})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "name", "POST", "/api/v1/admin/discovered/52:54:00:bb:00:01/enlist", admin, map[string]any{"name": "Not A Label"})
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/admin/discovered", cust, nil)
	en := keep(e.want(http.StatusCreated, "POST", "/api/v1/admin/discovered/"+url.PathEscape("52:54:00:bb:00:01")+"/enlist", admin, map[string]any{"name": "found"}))
	if en["name"] != "found" || obj(en["power"])["type"] != "manual" || obj(en["power"])["has_password"] != false {
		t.Errorf("enlisted discovered: %v", en)
	}
	if dl := e.want(http.StatusOK, "GET", "/api/v1/admin/discovered", admin, nil); len(items(dl)) != 0 {
		t.Errorf("discovered after enlist: %v", dl)
	}

	// The password never came back out, nor reached a log line.
	for _, b := range bodies {
		if s := jsonText(b); strings.Contains(s, bmcPassword) || strings.Contains(s, "v1:") {
			t.Errorf("a response shows the password or its ciphertext: %s", s)
		}
	}
	if out := logs.String(); strings.Contains(out, bmcPassword) || strings.Contains(out, tok) {
		t.Errorf("the logs show the password or the agent token")
	} else if !strings.Contains(out, "request refused") {
		t.Errorf("debug logs were not captured: %.200s", out)
	}
}
