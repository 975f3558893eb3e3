package portal

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestAPIMachineDeploy walks a deploy through the API as staff and the
// agent see it: machine images, staff deploy keys, the plan the agent
// fetches, its report with the host key, and the KVM host it becomes.
func TestAPIMachineDeploy(t *testing.T) {
	e, logs := newLoggedEnv(t)
	ctx := context.Background()
	admin := e.staff(store.RoleAdmin)
	operator := e.staff(store.RoleOperator)
	auditor := e.staff(store.RoleAuditor)
	cust := e.customer("Buyer", "b@buyer.example")

	// Staff deploy keys.
	staffKey := pubKey(t, "ops@noc")
	if r := e.want(http.StatusOK, "GET", "/api/v1/admin/deploy-ssh-keys", auditor, nil); jsonText(r["keys"]) != "[]" {
		t.Errorf("no keys yet: %v", r)
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "keys", "PUT", "/api/v1/admin/deploy-ssh-keys", admin, map[string]any{"keys": []string{staffKey, "ssh-rsa AAAA"}})
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "keys", "PUT", "/api/v1/admin/deploy-ssh-keys", admin, map[string]any{})
	e.wantErr(http.StatusForbidden, "forbidden", "", "PUT", "/api/v1/admin/deploy-ssh-keys", operator, map[string]any{"keys": []string{staffKey}})
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/admin/deploy-ssh-keys", cust, nil)
	e.wantErr(http.StatusUnauthorized, "unauthenticated", "", "GET", "/api/v1/admin/deploy-ssh-keys", "", nil)
	if r := e.want(http.StatusOK, "PUT", "/api/v1/admin/deploy-ssh-keys", admin, map[string]any{"keys": []string{staffKey}}); jsonText(r["keys"]) != jsonText([]string{staffKey}) {
		t.Errorf("set keys: %v", r)
	}

	// Machine images: http(s) only; customers never see them.
	sum := strings.Repeat("d", 64)
	img := map[string]any{"name": "metal", "os": "Debian", "version": "12", "kind": "machine", "source_url": "file:///srv/metal.img.gz", "checksum": sum}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "source_url", "POST", "/api/v1/admin/images", admin, img)
	img["kind"] = "vmware"
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "kind", "POST", "/api/v1/admin/images", admin, img)
	img["kind"], img["source_url"] = "machine", "http://10.9.0.1:8082/boot/images/metal.img.gz"
	if r := e.want(http.StatusCreated, "POST", "/api/v1/admin/images", admin, img); r["kind"] != "machine" {
		t.Errorf("machine image: %v", r)
	}
	if r := e.want(http.StatusOK, "GET", "/api/v1/images", cust, nil); strings.Contains(jsonText(r), "metal") {
		t.Errorf("customers see the machine image: %v", r)
	}

	m := e.want(http.StatusCreated, "POST", "/api/v1/admin/machines", admin, ipmiMachine("node-7", "52:54:00:cc:00:01"))
	id := m["id"].(string)
	e.want(http.StatusAccepted, "POST", "/api/v1/admin/machines/"+id+"/actions", operator, map[string]any{"type": "commission"})
	tok, err := e.st.IssueAgentToken(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if code, res := e.api("POST", "/api/agent/v1/report", "", agentReport(tok, "52:54:00:cc:00:01")); code != http.StatusNoContent {
		t.Fatalf("commission report: %d %v", code, res)
	}

	// Deploying as a KVM host: refused until the provisioner published its key.
	deploy := map[string]any{"type": "deploy", "image": "metal", "disk": "sda", "kvm_host": true}
	e.wantErr(http.StatusConflict, "conflict", "kvm_host", "POST", "/api/v1/admin/machines/"+id+"/actions", operator, deploy)
	provKey := pubKey(t, "fibrix-provisioner")
	if err := e.st.SetSetting(ctx, store.SettingProvisionerSSHKey, provKey); err != nil {
		t.Fatal(err)
	}
	sn, err := e.st.CreateBootSubnet(ctx, store.Actor{Email: "test"}, store.BootSubnetInput{Name: "rack1", CIDR: "10.9.0.0/24", DynamicStart: "10.9.0.100", DynamicEnd: "10.9.0.120"})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := e.st.Lease(ctx, sn.ID, "52:54:00:cc:00:01", netip.Addr{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dep := e.want(http.StatusAccepted, "POST", "/api/v1/admin/machines/"+id+"/actions", operator, deploy)
	if dep["state"] != "deploying" || dep["deploy_kvm_host"] != true {
		t.Errorf("deploy: %v", dep)
	}

	tok, err = e.st.IssueAgentToken(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]string{"no token": "", "unknown token": "?token=nope", "commission-style token": "?token=" + strings.Repeat("A", 43)} {
		if code, res := e.api("GET", "/api/agent/v1/deploy"+q, "", nil); code != http.StatusNotFound {
			t.Errorf("%s: %d %v", name, code, res)
		}
	}
	code, plan := e.api("GET", "/api/agent/v1/deploy?token="+tok, "", nil)
	if code != http.StatusOK || plan["image_url"] != img["source_url"] || plan["sha256"] != sum || plan["disk"] != "sda" ||
		plan["hostname"] != "node-7" || !strings.HasPrefix(plan["instance_id"].(string), id+"-") ||
		jsonText(plan["ssh_keys"]) != jsonText([]string{staffKey, provKey}) {
		t.Fatalf("plan: %d %v", code, plan)
	}

	hostKey := pubKey(t, "root@node-7")
	report := map[string]any{"token": tok, "mac": "52:54:00:cc:00:01", "mode": "deploy", "status": "ok",
		"deploy": map[string]any{"disk": "sda", "bytes_written": 400 << 20, "sha256": sum, "seed_partition": "sda1", "ssh_host_key": hostKey},
		"log":    []string{`level=INFO msg="image written" disk=/dev/sda`, `level=INFO msg="cloud-init seed written" partition=sda1`}}
	if code, res := e.api("POST", "/api/agent/v1/report", "", report); code != http.StatusNoContent {
		t.Fatalf("deploy report: %d %v", code, res)
	}
	r := e.want(http.StatusOK, "GET", "/api/v1/admin/machines/"+id, auditor, nil)
	bare := strings.TrimSuffix(hostKey, " root@node-7")
	if r["state"] != "deployed" || r["ssh_host_key"] != bare || r["host_id"] == "" {
		t.Fatalf("deployed: %v", r)
	}
	evs := r["events"].([]any)
	if last := obj(evs[len(evs)-1]); last["to"] != "deployed" || !strings.Contains(last["log"].(string), `msg="cloud-init seed written" partition=sda1`) {
		t.Errorf("deploy transition: %v", last)
	}
	// The machine page shows the agent's log under the transition.
	_, doc := e.staffBrowser(store.RoleAuditor).get("/admin/machines/" + id)
	if got := doc.Find(`[data-testid="machine-event-log"] pre`).Last().Text(); !strings.Contains(got, `msg="image written"`) {
		t.Errorf("machine page agent log = %q", got)
	}
	h := e.want(http.StatusOK, "GET", "/api/v1/admin/hosts/"+r["host_id"].(string), admin, nil)
	if h["name"] != "node-7" || h["uri"] != "qemu+ssh://debian@"+lease.IP.String()+"/system" {
		t.Errorf("host: %v", h)
	}
	if out := logs.String(); strings.Contains(out, tok) {
		t.Errorf("the logs show the agent token")
	}
}

// TestWebDeployKeys saves staff deploy keys from the machines page; a bad
// key is refused with its position and keeps what was typed.
func TestWebDeployKeys(t *testing.T) {
	e := newEnv(t)
	b := e.staffBrowser(store.RoleAdmin)
	good := pubKey(t, "ops@noc")
	_, doc := b.get("/admin/machines")
	if doc.Find(`[data-testid="admin-deploy-keys-form"]`).Length() != 1 {
		t.Fatal("no deploy keys form")
	}
	res, doc := b.post("/admin/machines/deploy-keys", url.Values{"keys": {good + "\n# comment\n\nnot-a-key"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find(`[data-testid="admin-deploy-keys"]`).Text(), "key 2:") ||
		!strings.Contains(doc.Find(`[data-testid="input-deploy-keys"]`).Text(), "not-a-key") {
		t.Fatalf("bad key: %d %s", res.StatusCode, doc.Find(`[data-testid="admin-deploy-keys"]`).Text())
	}
	if keys, _ := e.st.DeploySSHKeys(context.Background()); len(keys) != 0 {
		t.Fatalf("a refused form saved %v", keys)
	}
	res, _ = b.post("/admin/machines/deploy-keys", url.Values{"keys": {good + "\n"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	_, doc = b.get("/admin/machines")
	if got := doc.Find(`[data-testid="input-deploy-keys"]`).Text(); got != good {
		t.Errorf("saved keys shown as %q", got)
	}
	// Operators see the keys but cannot change them.
	ob := e.staffBrowser(store.RoleOperator)
	_, doc = ob.get("/admin/machines")
	if doc.Find(`[data-testid="admin-deploy-keys-form"]`).Length() != 0 || !strings.Contains(doc.Find(`[data-testid="admin-deploy-keys-list"]`).Text(), good) {
		t.Errorf("operator view of deploy keys")
	}
	if res, _ := ob.post("/admin/machines/deploy-keys", url.Values{"keys": {""}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator post: %d", res.StatusCode)
	}
}
