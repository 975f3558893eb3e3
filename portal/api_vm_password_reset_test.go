package portal

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/shacrypt"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// rescueHash is the hash the guest's metadata carries, and its generation.
func rescueHash(t *testing.T, e *env, vmID string) (string, int) {
	t.Helper()
	ctx := context.Background()
	tok, err := e.st.EnsureMetadataToken(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.st.MetadataByToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	return m.RescuePasswordHash, m.RescueGeneration
}

// finishOp marks an operation done, as the provisioner does.
func finishOp(t *testing.T, e *env, opID string) {
	t.Helper()
	if err := e.st.FinishOperation(context.Background(), opID, store.OpDone, "rebooted"); err != nil {
		t.Fatal(err)
	}
}

func TestAPIVMPasswordReset(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Rescue", "o@rescue.example")
	key := e.addKey(owner, "laptop")
	e.image("debian-12")
	vm := e.order(owner, "web", "nano", "debian-12", key)
	ro := e.member(owner, "ro@rescue.example", store.RoleReadOnly)
	roToken := e.apiToken(owner, store.ScopeRead)
	other := e.customer("Others", "x@others.example")
	path := apiPrefix + "/vms/" + vm + "/password-reset"

	e.wantErr(http.StatusConflict, "invalid_state", "type", "POST", path, owner, nil)
	runVM(t, e, vm)
	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{"read-only member", ro, path, http.StatusForbidden},
		{"read-only token", roToken, path, http.StatusForbidden},
		{"another tenant", other, path, http.StatusNotFound},
		{"unknown vm", owner, apiPrefix + "/vms/nope/password-reset", http.StatusNotFound},
		{"unauthenticated", "", path, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, res := e.api("POST", tc.path, tc.token, nil); got != tc.want {
				t.Errorf("%d, want %d: %v", got, tc.want, res)
			}
		})
	}
	if h, g := rescueHash(t, e, vm); h != "" || g != 0 {
		t.Fatalf("refusals changed the VM: generation %d hash %q", g, h)
	}

	req := httptest.NewRequest("POST", path, nil)
	req.Header.Set("Authorization", "Bearer "+owner)
	res := e.do(req)
	var first vmPasswordResetJSON
	err := json.NewDecoder(res.Body).Decode(&first)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusAccepted || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reset: %d, Cache-Control %q, %v", res.StatusCode, res.Header.Get("Cache-Control"), err)
	}
	hash, gen := rescueHash(t, e, vm)
	finishOp(t, e, first.Operation.ID)

	// Another reset gives another password, and the guest another generation.
	body := e.want(http.StatusAccepted, "POST", path, owner, nil)
	pw, _ := body["password"].(string)
	if len(pw) != consolePasswordLen || strings.ContainsAny(pw, "0O1lI") {
		t.Errorf("password %q", pw)
	}
	op := obj(body["operation"])
	if op["type"] != store.OpReboot || op["state"] != store.OpQueued {
		t.Errorf("operation %v, want a queued reboot", op)
	}
	hash2, gen2 := rescueHash(t, e, vm)
	if gen != 1 || gen2 != 2 || hash2 == hash || shacrypt.Crypt(pw, hash2) != hash2 {
		t.Errorf("generations %d, %d; the stored hash does not check against the password", gen, gen2)
	}
	e.wantErr(http.StatusConflict, "conflict", "type", "POST", path, owner, nil)

	tenantID, _ := e.account(owner)
	var got []string
	for _, a := range auditActions(t, e, tenantID, "vm.password_reset") {
		if strings.Contains(a.Detail, pw) || strings.Contains(a.Detail, "$6$") {
			t.Errorf("audit holds a secret: %q", a.Detail)
		}
		got = append(got, a.Result)
	}
	if diff := cmp.Diff([]string{"failure", "success", "success", "failure"}, got[:4]); diff != "" {
		t.Errorf("audit, newest first (-want +got):\n%s", diff)
	}
}

func TestWebVMPasswordReset(t *testing.T) {
	e := newEnv(t)
	e.srv.cfg.Consoles = newTestConsoles()
	owner := e.customer("Rescue", "o@rescue.example")
	key := e.addKey(owner, "laptop")
	e.image("debian-12")
	vm := e.order(owner, "web", "nano", "debian-12", key)
	e.member(owner, "ro@rescue.example", store.RoleReadOnly)
	e.customer("Others", "x@others.example")

	b := e.browser()
	b.login("o@rescue.example", "correct horse battery")
	if res, _ := b.post("/vms/"+vm+"/password-reset", nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/vms/"+vm {
		t.Errorf("reset of a pending VM: %d to %q, want a redirect back", res.StatusCode, res.Header.Get("Location"))
	}
	runVM(t, e, vm)
	_, doc := b.get("/vms/" + vm + "/console")
	if doc.Find(`[data-testid=password-reset-form]`).AttrOr("action", "") != "/vms/"+vm+"/password-reset" {
		t.Fatal("the console page has no password reset form")
	}

	ro := e.browser()
	ro.login("ro@rescue.example", "member password 1")
	if res, _ := ro.post("/vms/"+vm+"/password-reset", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("read-only member: %d", res.StatusCode)
	}
	stranger := e.browser()
	stranger.login("x@others.example", "correct horse battery")
	if res, _ := stranger.post("/vms/"+vm+"/password-reset", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant: %d", res.StatusCode)
	}
	if h, g := rescueHash(t, e, vm); h != "" || g != 0 {
		t.Fatalf("refusals changed the VM: generation %d hash %q", g, h)
	}

	res, doc := b.post("/vms/"+vm+"/password-reset", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reset: %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	pw := strings.TrimSpace(doc.Find(`[data-testid=console-password]`).Text())
	hash, gen := rescueHash(t, e, vm)
	if len(pw) != consolePasswordLen || gen != 1 || shacrypt.Crypt(pw, hash) != hash {
		t.Errorf("page shows %q; generation %d", pw, gen)
	}
	notice := doc.Find(`[data-testid=password-reset-notice]`).Text()
	if !strings.Contains(notice, "reboots") || !strings.Contains(notice, "console only") {
		t.Errorf("notice %q", notice)
	}
	// Shown once: the VM and console pages never carry it.
	for _, p := range []string{"/vms/" + vm, "/vms/" + vm + "/console"} {
		if _, d := b.get(p); strings.Contains(d.Text(), pw) {
			t.Errorf("%s shows the password again", p)
		}
	}
	// Without the CSRF token nothing happens.
	if res, _ := b.post("/vms/"+vm+"/password-reset", map[string][]string{"_csrf": {"forged"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("forged CSRF token: %d", res.StatusCode)
	}
	if _, g := rescueHash(t, e, vm); g != 1 {
		t.Errorf("generation %d after a forged post", g)
	}
}
