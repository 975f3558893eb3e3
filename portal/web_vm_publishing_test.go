package portal

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// setRunning plays the provisioner: the VM runs with an address.
func (sh *shop) setRunning(vmID, ip string) {
	sh.e.t.Helper()
	db, err := sql.Open("sqlite", "file:"+sh.dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		sh.e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE vms SET state = ?, ip = ? WHERE id = ?", store.VMRunning, ip, vmID); err != nil {
		sh.e.t.Fatal(err)
	}
}

func TestVMDetailGatewayAccess(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)

	// Pending: no way in yet.
	_, doc := sh.owner.get("/vms/" + id)
	for _, tid := range []string{"vm-gateway-command", "vm-ssh-config", "gateway-fingerprint", "vm-ssh-command"} {
		if doc.Find(`[data-testid="`+tid+`"]`).Length() != 0 {
			t.Errorf("a pending VM shows %s", tid)
		}
	}

	sh.setRunning(id, "10.0.0.5")
	if err := sh.e.st.SetSetting(context.Background(), store.SettingGatewayFingerprint, "SHA256:abcdefGHIJ"); err != nil {
		t.Fatal(err)
	}
	_, doc = sh.owner.get("/vms/" + id)
	for tid, want := range map[string]string{
		"vm-gateway-command":  "ssh -J acme@127.0.0.1:2222 debian@web-1.acme.cloud.internal",
		"vm-ssh-config":       "ProxyJump acme@127.0.0.1:2222",
		"gateway-fingerprint": "SHA256:abcdefGHIJ",
		"vm-ssh-command":      "ssh debian@10.0.0.5",
	} {
		if got := strings.TrimSpace(doc.Find(`[data-testid="` + tid + `"]`).Text()); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", tid, got, want)
		}
	}
	cfg := doc.Find(`[data-testid="vm-ssh-config"]`)
	if n := cfg.Nodes; len(n) != 1 || n[0].Data != "details" {
		t.Error("the ssh config snippet is not in a <details>")
	}
	if got := cfg.Text(); !strings.Contains(got, "Host web-1.acme") || !strings.Contains(got, "HostName web-1.acme.cloud.internal") || !strings.Contains(got, "User debian") {
		t.Errorf("ssh config: %q", got)
	}
}

func TestVMDetailPublishingForms(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	ctx := context.Background()

	// Exposure: both checkboxes at once.
	res, _ := sh.owner.post("/vms/"+id+"/exposure", url.Values{"expose_https": {"on"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("exposure: %d", res.StatusCode)
	}
	if ex, err := sh.e.st.GetVMExposure(ctx, sh.tenant, id); err != nil || ex.HTTP || !ex.HTTPS {
		t.Errorf("exposure %+v %v", ex, err)
	}
	_, doc := sh.owner.get("/vms/" + id)
	if _, on := doc.Find(`[data-testid=vm-exposure-form] input[name=expose_https]`).Attr("checked"); !on {
		t.Error("HTTPS not shown as exposed")
	}

	// Forwards: add, refuse, list, remove.
	res, _ = sh.owner.post("/vms/"+id+"/forwards", url.Values{"target_port": {"22"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add forward: %d", res.StatusCode)
	}
	for name, form := range map[string]url.Values{
		"bad target": {"target_port": {"0"}},
		"not number": {"target_port": {"ssh"}},
		"out range":  {"target_port": {"22"}, "public_port": {"80"}},
	} {
		res, doc := sh.owner.post("/vms/"+id+"/forwards", form)
		if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`[aria-invalid=true]`).Length() == 0 {
			t.Errorf("%s: %d", name, res.StatusCode)
		}
	}
	fwds, _, err := sh.e.st.ListPortForwards(ctx, sh.tenant, store.Page{PerPage: 10})
	if err != nil || len(fwds) != 1 {
		t.Fatalf("forwards %v %v", fwds, err)
	}
	_, doc = sh.owner.get("/vms/" + id)
	if got := doc.Find(`[data-testid=vm-forward]`).Text(); !strings.Contains(got, "127.0.0.1:20000") || !strings.Contains(got, "22") {
		t.Errorf("forward row: %q", got)
	}

	// Another tenant and a read-only member cannot touch them.
	rival, _ := sh.signup("Rival", "r@rival.example")
	ro := sh.join(sh.inviteLink(sh.owner, "ro@acme.example", store.RoleReadOnly))
	for _, tc := range []struct {
		name   string
		b      *browser
		status int
	}{{"another tenant", rival, http.StatusNotFound}, {"read-only member", ro, http.StatusForbidden}} {
		for _, p := range []struct {
			path string
			form url.Values
		}{
			{"/vms/" + id + "/exposure", url.Values{"expose_http": {"on"}}},
			{"/vms/" + id + "/forwards", url.Values{"target_port": {"80"}}},
			{"/vms/" + id + "/forwards/" + fwds[0].ID + "/delete", nil},
		} {
			if res, _ := tc.b.post(p.path, p.form); res.StatusCode != tc.status {
				t.Errorf("%s POST %s: %d, want %d", tc.name, p.path, res.StatusCode, tc.status)
			}
		}
	}
	_, doc = ro.get("/vms/" + id)
	if doc.Find(`[data-testid=vm-exposure-form], [data-testid=vm-forward-form], [data-testid=vm-forward-delete]`).Length() != 0 {
		t.Error("a read-only member sees publishing forms")
	}
	if ex, _ := sh.e.st.GetVMExposure(ctx, sh.tenant, id); ex.HTTP {
		t.Error("exposure changed by a refused request")
	}
	for _, path := range []string{"/vms/" + id + "/exposure", "/vms/" + id + "/forwards", "/vms/" + id + "/forwards/" + fwds[0].ID + "/delete"} {
		if res, _ := sh.e.browser().post(path, url.Values{"expose_http": {"on"}, "target_port": {"80"}}); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("signed out POST %s: %d", path, res.StatusCode)
		}
	}

	res, _ = sh.owner.post("/vms/"+id+"/forwards/"+fwds[0].ID+"/delete", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete forward: %d", res.StatusCode)
	}
	if _, n, _ := sh.e.st.ListPortForwards(ctx, sh.tenant, store.Page{PerPage: 10}); n != 0 {
		t.Errorf("%d forwards after delete", n)
	}
	if res, _ := sh.owner.post("/vms/"+id+"/forwards/"+fwds[0].ID+"/delete", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: %d", res.StatusCode)
	}
}
