package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestAPISSHKeys(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Keys", "k@keys.example")
	other := e.customer("Other", "o@other.example")
	pk := pubKey(t, "me@laptop")

	created := e.want(http.StatusCreated, "POST", "/api/v1/ssh-keys", tok, map[string]string{"name": "laptop", "public_key": pk})
	for _, k := range []string{"id", "name", "type", "bits", "fingerprint", "public_key", "comment", "created_by", "created_at"} {
		if _, ok := created[k]; !ok {
			t.Errorf("key lacks %s: %v", k, created)
		}
	}
	if created["type"] != "ssh-ed25519" || created["comment"] != "me@laptop" || created["created_by"] != "k@keys.example" ||
		!strings.HasSuffix(created["created_at"].(string), "Z") {
		t.Errorf("created key: %v", created)
	}
	id := created["id"].(string)

	for _, tc := range []struct {
		name, keyName, key string
		status             int
		code, field        string
	}{
		{"garbage key", "x", "ssh-ed25519 notbase64", http.StatusUnprocessableEntity, "invalid", "public_key"},
		{"empty key", "x", "", http.StatusUnprocessableEntity, "invalid", "public_key"},
		{"name too long", strings.Repeat("n", 65), pubKey(t, "c"), http.StatusUnprocessableEntity, "invalid", "name"},
		{"duplicate", "again", pk, http.StatusConflict, "conflict", "public_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(tc.status, tc.code, tc.field, "POST", "/api/v1/ssh-keys", tok, map[string]string{"name": tc.keyName, "public_key": tc.key})
		})
	}
	e.t = t
	if l := e.want(http.StatusOK, "GET", "/api/v1/ssh-keys", tok, nil); l["total"] != float64(1) {
		t.Errorf("refusals added keys: %v", l)
	}

	got := e.want(http.StatusOK, "GET", "/api/v1/ssh-keys/"+id, tok, nil)
	if got["fingerprint"] != created["fingerprint"] {
		t.Errorf("get: %v", got)
	}
	// Another tenant's id is not found, and stays.
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/ssh-keys/"+id, other, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/ssh-keys/"+id, other, nil)
	e.want(http.StatusOK, "GET", "/api/v1/ssh-keys/"+id, tok, nil)

	code, body := e.raw("DELETE", "/api/v1/ssh-keys/"+id, tok, "", "")
	if code != http.StatusNoContent || body != "" {
		t.Errorf("delete: %d %q", code, body)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/ssh-keys/"+id, tok, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", "/api/v1/ssh-keys/"+id, tok, nil)
}

func TestAPISSHKeyQuota(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Full", "f@full.example")
	tenantID, _ := e.account(tok)
	if err := e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, tenantID, store.Quota{Instances: 1, VCPUs: 1, MemoryMiB: 512, DiskGiB: 10, SSHKeys: 2}); err != nil {
		t.Fatal(err)
	}
	e.addKey(tok, "a")
	e.addKey(tok, "b")
	code, body := e.api("POST", "/api/v1/ssh-keys", tok, map[string]string{"name": "c", "public_key": pubKey(t, "c")})
	if c, _ := apiErr(body); code != http.StatusUnprocessableEntity || c != "quota_exceeded" ||
		!strings.Contains(obj(body["error"])["message"].(string), "2 SSH keys") {
		t.Errorf("over key quota: %d %v", code, body)
	}
	q := e.want(http.StatusOK, "GET", "/api/v1/quota", tok, nil)
	if obj(q["used"])["ssh_keys"] != float64(2) || obj(q["limits"])["ssh_keys"] != float64(2) || obj(q["limits"])["memory_mib"] != float64(512) {
		t.Errorf("quota: %v", q)
	}
}

func TestAPIPagination(t *testing.T) {
	e := newEnv(t)
	tok := e.customer("Pages", "p@pages.example")
	seen := map[string]bool{}
	for i := range 5 {
		e.addKey(tok, "key-"+string(rune('a'+i)))
	}
	for page, want := range map[int]int{1: 2, 2: 2, 3: 1, 4: 0} {
		res := e.want(http.StatusOK, "GET", "/api/v1/ssh-keys?per_page=2&page="+itoa(page), tok, nil)
		if len(items(res)) != want || res["total"] != float64(5) || res["page"] != float64(page) || res["per_page"] != float64(2) {
			t.Errorf("page %d: %v", page, res)
		}
		for _, it := range items(res) {
			id := obj(it)["id"].(string)
			if seen[id] {
				t.Errorf("key %s on two pages", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("pages showed %d keys, want 5", len(seen))
	}
	if res := e.want(http.StatusOK, "GET", "/api/v1/ssh-keys", tok, nil); res["per_page"] != float64(store.DefaultPerPage) || res["page"] != float64(1) {
		t.Errorf("defaults: %v", res)
	}
	for _, tc := range []struct{ name, query, field string }{
		{"per_page zero", "per_page=0", "per_page"},
		{"per_page huge", "per_page=1000", "per_page"},
		{"per_page negative", "per_page=-1", "per_page"},
		{"page zero", "page=0", "page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			for _, path := range []string{"/api/v1/ssh-keys", "/api/v1/vms", "/api/v1/audit"} {
				e.wantErr(http.StatusBadRequest, "bad_request", tc.field, "GET", path+"?"+tc.query, tok, nil)
			}
			e.wantErr(http.StatusBadRequest, "bad_request", tc.field, "GET", "/api/v1/admin/tenants?"+tc.query, e.staff(store.RoleAuditor), nil)
		})
	}
}
