package portal

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	_ "github.com/glebarez/go-sqlite"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/sshkey"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// shop is a portal with one image and a signed-in tenant owner.
type shop struct {
	e      *env
	dbPath string
	owner  *browser
	email  string
	tenant string
	image  store.Image
}

func newShop(t *testing.T) *shop {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fibrix.db")
	e := newEnvOn(t, path)
	sh := &shop{e: e, dbPath: path, image: e.image("debian-12")}
	sh.owner, sh.tenant = sh.signup("Acme", "owner@acme.example")
	sh.email = "owner@acme.example"
	return sh
}

// signup creates another tenant through the form and returns its owner.
func (sh *shop) signup(tenant, email string) (*browser, string) {
	sh.e.t.Helper()
	b := sh.e.browser()
	b.signup(tenant, email)
	u, err := sh.e.st.GetUserByEmail(context.Background(), email)
	if err != nil {
		sh.e.t.Fatal(err)
	}
	return b, u.Tenant()
}

// addKey adds a key through the form and returns its id.
func (sh *shop) addKey(b *browser, tenantID, name string) string {
	sh.e.t.Helper()
	res, doc := b.post("/ssh-keys", url.Values{"name": {name}, "public_key": {pubKey(sh.e.t, name)}})
	if res.StatusCode != http.StatusSeeOther {
		sh.e.t.Fatalf("add key %s: %d %s", name, res.StatusCode, doc.Find("main").Text())
	}
	keys := sh.keys(tenantID)
	for _, k := range keys {
		if k.Name == name {
			return k.ID
		}
	}
	sh.e.t.Fatalf("key %s not stored", name)
	return ""
}

func (sh *shop) keys(tenantID string) []store.SSHKey {
	sh.e.t.Helper()
	keys, _, err := sh.e.st.ListSSHKeys(context.Background(), tenantID, store.Page{PerPage: 100})
	if err != nil {
		sh.e.t.Fatal(err)
	}
	return keys
}

func (sh *shop) vms(tenantID string) []store.VMSummary {
	sh.e.t.Helper()
	vms, _, err := sh.e.st.ListVMs(context.Background(), tenantID, store.Page{PerPage: 100})
	if err != nil {
		sh.e.t.Fatal(err)
	}
	return vms
}

func (sh *shop) vm(tenantID, id string) store.VMDetail {
	sh.e.t.Helper()
	d, err := sh.e.st.GetVM(context.Background(), tenantID, id)
	if err != nil {
		sh.e.t.Fatal(err)
	}
	return d
}

// order submits the order form and returns the response.
func (sh *shop) order(b *browser, name, plan string, keys ...string) (*http.Response, *goquery.Document) {
	sh.e.t.Helper()
	return b.post("/vms", url.Values{"name": {name}, "plan": {plan}, "image": {sh.image.ID}, "ssh_keys": keys})
}

// orderOK orders a VM that must be accepted and returns its id.
func (sh *shop) orderOK(b *browser, name, plan string, keys ...string) string {
	sh.e.t.Helper()
	res, doc := sh.order(b, name, plan, keys...)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/vms/") {
		sh.e.t.Fatalf("order %s: %d %s %s", name, res.StatusCode, loc, doc.Find("main").Text())
	}
	return strings.TrimPrefix(loc, "/vms/")
}

// setState plays the provisioner, which is not part of the portal.
func (sh *shop) setState(vmID, state string) {
	sh.e.t.Helper()
	db, err := sql.Open("sqlite", "file:"+sh.dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		sh.e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE vms SET state = ? WHERE id = ?", state, vmID); err != nil {
		sh.e.t.Fatal(err)
	}
}

// inviteLink creates an invitation through the form and returns its token.
func (sh *shop) inviteLink(b *browser, email, role string) string {
	sh.e.t.Helper()
	res, doc := b.post("/account/invitations", url.Values{"email": {email}, "role": {role}})
	link, _ := doc.Find(`[data-testid=invite-link] input`).Attr("value")
	if res.StatusCode != http.StatusOK || link == "" {
		sh.e.t.Fatalf("invite %s: %d %s", email, res.StatusCode, doc.Find("main").Text())
	}
	_, token, ok := strings.Cut(link, "/invite/")
	if !ok {
		sh.e.t.Fatalf("invite link %q", link)
	}
	return token
}

// join accepts an invitation through the form.
func (sh *shop) join(token string) *browser {
	sh.e.t.Helper()
	b := sh.e.browser()
	res, _ := b.post("/invite/"+token, url.Values{"password": {"member password 1"}, "password_confirm": {"member password 1"}})
	if res.StatusCode != http.StatusSeeOther {
		sh.e.t.Fatalf("join: %d", res.StatusCode)
	}
	return b
}

func flashOf(doc *goquery.Document) string { return doc.Find(`[data-testid=flash]`).Text() }

// follow fetches where a redirect points, so its flash can be read.
func follow(b *browser, res *http.Response) *goquery.Document {
	_, doc := b.get(res.Header.Get("Location"))
	return doc
}

func TestCustomerPagesRender(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	vmID := sh.orderOK(sh.owner, "web-1", "small", key)
	sh.inviteLink(sh.owner, "new@acme.example", "member")
	sh.owner.post("/account/tokens", url.Values{"name": {"ci"}, "scope": {"read"}})

	for _, tc := range []struct {
		name, path string
		testids    []string
	}{
		{"dashboard", "/dashboard", []string{"quota-card", "quota-instances", "quota-vcpus", "quota-memory", "quota-disk", "quota-ssh_keys", "quota-port_forwards", "recent-vm-row", "create-vm", "create-hint"}},
		{"vm list", "/vms", []string{"vm-table", "vm-row", "vm-link", "state-badge", "pagination"}},
		{"vm new", "/vms/new", []string{"vm-new-form", "plan-card", "image-select", "key-option", "remaining-quota"}},
		{"vm detail", "/vms/" + vmID, []string{"vm-name", "vm-facts", "vm-status", "timeline-step", "danger-zone", "vm-delete-form"}},
		{"vm status", "/vms/" + vmID + "/status", []string{"vm-status", "timeline"}},
		{"ssh keys", "/ssh-keys", []string{"key-quota", "key-table", "key-row", "key-fingerprint", "key-delete-form", "key-add-form"}},
		{"account", "/account", []string{"profile", "password-form", "member-table", "member-row", "member-you", "invite-form", "invitation-row"}},
		{"tokens", "/account/tokens", []string{"token-table", "token-row", "token-create-form"}},
		{"audit", "/audit", []string{"audit-table", "audit-row", "result-badge", "pagination"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := sh.owner.get(tc.path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			for _, id := range tc.testids {
				if doc.Find(`[data-testid="`+id+`"]`).Length() == 0 {
					t.Errorf("no %s", id)
				}
			}
		})
	}

	t.Run("signed out goes to login", func(t *testing.T) {
		for _, p := range []string{"/dashboard", "/vms", "/vms/new", "/vms/" + vmID, "/ssh-keys", "/account", "/account/tokens", "/audit"} {
			res, _ := sh.e.browser().get(p)
			if res.StatusCode/100 != 3 || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
				t.Errorf("%s: %d %s", p, res.StatusCode, res.Header.Get("Location"))
			}
		}
		res, _ := sh.e.browser().post("/vms", url.Values{"name": {"x"}})
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /vms signed out: %d", res.StatusCode)
		}
	})

	t.Run("staff are sent to the admin panel", func(t *testing.T) {
		b := sh.e.staffBrowser(store.RoleAdmin)
		for _, p := range []string{"/dashboard", "/vms", "/ssh-keys", "/audit", "/vms/" + vmID} {
			if res, _ := b.get(p); res.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d", p, res.StatusCode)
			}
		}
	})
}

func TestDashboardQuota(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	used := func(doc *goquery.Document, k string) string {
		v, _ := doc.Find(`[data-testid="quota-` + k + `"] [data-testid=quota-bar]`).Attr("data-used")
		return v
	}
	_, doc := sh.owner.get("/dashboard")
	if used(doc, "instances") != "0" || used(doc, "vcpus") != "0" || used(doc, "ssh_keys") != "1" {
		t.Fatalf("before: instances %s vcpus %s keys %s", used(doc, "instances"), used(doc, "vcpus"), used(doc, "ssh_keys"))
	}
	if hint := doc.Find(`[data-testid=create-hint]`).Text(); hint != "You can still create 5 instances (8 vCPU, 16 GiB RAM, 200 GiB disk)" {
		t.Errorf("hint before: %q", hint)
	}

	sh.orderOK(sh.owner, "db-1", "medium", key)
	_, doc = sh.owner.get("/dashboard")
	for k, want := range map[string]string{"instances": "1", "vcpus": "2", "memory": "4096", "disk": "40", "port_forwards": "0"} {
		if got := used(doc, k); got != want {
			t.Errorf("after order %s used %s, want %s", k, got, want)
		}
	}
	if hint := doc.Find(`[data-testid=create-hint]`).Text(); hint != "You can still create 4 instances (6 vCPU, 12 GiB RAM, 160 GiB disk)" {
		t.Errorf("hint after: %q", hint)
	}
	if doc.Find(`[data-testid=recent-vm-row]`).Length() != 1 {
		t.Error("the new VM is not among the recent ones")
	}

	q := store.Quota{Instances: 1, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 10, PortForwards: 5}
	if err := sh.e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, sh.tenant, q); err != nil {
		t.Fatal(err)
	}
	_, doc = sh.owner.get("/dashboard")
	btn := doc.Find(`button[data-testid=create-vm]`)
	if _, disabled := btn.Attr("disabled"); btn.Length() != 1 || !disabled {
		t.Error("create button not disabled when no instance is left")
	}
	if r := doc.Find(`[data-testid=create-reason]`).Text(); r != "your quota allows 1 instances and all are in use" {
		t.Errorf("reason: %q", r)
	}

	if err := sh.e.st.SuspendTenant(context.Background(), store.Actor{Email: "test"}, sh.tenant, "unpaid invoice"); err != nil {
		t.Fatal(err)
	}
	sh.owner.login(sh.email, "correct horse battery")
	_, doc = sh.owner.get("/dashboard")
	if r := doc.Find(`[data-testid=create-reason]`).Text(); !strings.Contains(r, "suspended") {
		t.Errorf("suspended reason: %q", r)
	}
}

func TestVMOrder(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	other, otherTenant := sh.signup("Other", "owner@other.example")
	otherKey := sh.addKey(other, otherTenant, "theirs")

	id := sh.orderOK(sh.owner, "web-1", "small", key)
	res, doc := sh.owner.get("/vms/" + id)
	if f := flashOf(doc); res.StatusCode != http.StatusOK || f != "VM web-1 ordered; it is pending until the provisioner picks it up." {
		t.Errorf("after order: %d flash %q", res.StatusCode, f)
	}
	if st := sh.vm(sh.tenant, id).State; st != store.VMPending {
		t.Errorf("state %s, want pending", st)
	}

	for _, tc := range []struct {
		name, vm, plan string
		keys           []string
		quota          *store.Quota
		status         int
		field, msg     string
	}{
		{name: "bad hostname", vm: "Web_2", plan: "small", keys: []string{key}, status: 422, field: "name", msg: "lower-case"},
		{name: "bad hostname dash", vm: "-web", plan: "small", keys: []string{key}, status: 422, field: "name", msg: "dash"},
		{name: "duplicate", vm: "web-1", plan: "small", keys: []string{key}, status: 409, field: "name", msg: "already have a VM called web-1"},
		{name: "no key", vm: "web-2", plan: "small", status: 422, field: "ssh_keys", msg: "at least one SSH key"},
		{name: "another tenant's key", vm: "web-2", plan: "small", keys: []string{otherKey}, status: 422, field: "ssh_keys", msg: "does not exist in your account"},
		{name: "unknown plan", vm: "web-2", plan: "huge", keys: []string{key}, status: 422, field: "plan", msg: "no longer offered"},
		{name: "over memory quota", vm: "web-2", plan: "large", keys: []string{key},
			quota: &store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 4096, DiskGiB: 200, SSHKeys: 10}, status: 422, field: "plan", msg: "needs 8 GiB RAM; 2 GiB left in your quota"},
		{name: "over instance quota", vm: "web-2", plan: "nano", keys: []string{key},
			quota: &store.Quota{Instances: 1, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 10}, status: 422, field: "plan", msg: "your quota allows 1 instances"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.quota != nil {
				if err := sh.e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, sh.tenant, *tc.quota); err != nil {
					t.Fatal(err)
				}
			}
			res, doc := sh.order(sh.owner, tc.vm, tc.plan, tc.keys...)
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			if msg := doc.Find(`[data-testid="error-` + tc.field + `"]`).Text(); !strings.Contains(msg, tc.msg) {
				t.Errorf("error at %s: %q, want %q", tc.field, msg, tc.msg)
			}
			if v, _ := doc.Find(`input[name=name]`).Attr("value"); v != tc.vm {
				t.Errorf("name not kept: %q", v)
			}
			if n := len(sh.vms(sh.tenant)); n != 1 {
				t.Errorf("%d VMs, want 1", n)
			}
			if n := len(sh.vms(otherTenant)); n != 0 {
				t.Errorf("other tenant has %d VMs", n)
			}
		})
	}
}

func TestVMNewMarksPlansThatDoNotFit(t *testing.T) {
	sh := newShop(t)
	sh.addKey(sh.owner, sh.tenant, "laptop")
	q := store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 4096, DiskGiB: 200, SSHKeys: 10}
	if err := sh.e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, sh.tenant, q); err != nil {
		t.Fatal(err)
	}
	res, doc := sh.owner.get("/vms/new")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, tc := range []struct {
		plan   string
		fits   bool
		reason string
	}{
		{"plan-nano", true, ""},
		{"plan-medium", true, ""},
		{"plan-large", false, "needs 8 GiB RAM; 4 GiB left in your quota"},
	} {
		card := doc.Find(`[data-testid=plan-card][data-plan="` + tc.plan + `"]`)
		_, disabled := card.Find(`input[type=radio]`).Attr("disabled")
		if fits, _ := card.Attr("data-fits"); fits != boolText(tc.fits) || disabled == tc.fits {
			t.Errorf("%s: data-fits %s disabled %v", tc.plan, fits, disabled)
		}
		if r := card.Find(`[data-testid=plan-reason]`).Text(); r != tc.reason {
			t.Errorf("%s: reason %q, want %q", tc.plan, r, tc.reason)
		}
	}
	if r := doc.Find(`[data-testid=remaining-quota]`).Text(); r != "Left in your quota: 5 instances, 8 vCPU, 4 GiB RAM, 200 GiB disk" {
		t.Errorf("remaining: %q", r)
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestVMOrderMultipart(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	key2 := sh.addKey(sh.owner, sh.tenant, "desktop")
	res, _ := sh.owner.postMultipart("/vms", map[string]string{"name": "mp-1", "plan": "nano", "image": sh.image.Name, "ssh_keys": key}, "", "", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("multipart order: %d", res.StatusCode)
	}
	// Two keys at once through the urlencoded form.
	id := sh.orderOK(sh.owner, "mp-2", "nano", key, key2)
	if n := len(sh.vm(sh.tenant, id).Keys); n != 2 {
		t.Errorf("%d keys attached, want 2", n)
	}
}

func TestVMDetailStatusFragment(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)

	req := httptest.NewRequest("GET", "/vms/"+id+"/status", nil)
	req.Header.Set("HX-Request", "true")
	res := sh.owner.send(req)
	doc, err := goquery.NewDocumentFromReader(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status fragment: %d %v", res.StatusCode, err)
	}
	if doc.Find("header.site-header").Length() != 0 {
		t.Error("the fragment carries the page layout")
	}
	block := doc.Find(`#vm-status`)
	if hx, _ := block.Attr("hx-get"); hx != "/vms/"+id+"/status" {
		t.Errorf("hx-get %q", hx)
	}
	if trig, _ := block.Attr("hx-trigger"); trig != "every 3s" {
		t.Errorf("hx-trigger %q", trig)
	}
	if s, _ := block.Find(`[data-testid=state-badge]`).Attr("data-state"); s != "pending" {
		t.Errorf("state %q", s)
	}
	if step := block.Find(`[data-testid=timeline-step]`).First().Text(); !strings.Contains(step, "order") || !strings.Contains(step, "small") {
		t.Errorf("timeline: %q", step)
	}

	// Settled VMs stop polling and offer their actions, each form with the CSRF token.
	sh.setState(id, store.VMRunning)
	_, doc = sh.owner.get("/vms/" + id + "/status")
	if _, ok := doc.Find(`#vm-status`).Attr("hx-get"); ok {
		t.Error("a running VM still polls")
	}
	if tok, _ := doc.Find(`[data-testid=vm-action-reboot] input[name=_csrf]`).Attr("value"); tok == "" || tok != sh.owner.csrf() {
		t.Errorf("action form csrf %q", tok)
	}

	_, doc = sh.owner.get("/vms/" + id)
	for id, want := range map[string]string{"vm-plan": "small", "vm-image": "debian-12", "vm-keys": "laptop", "vm-ip": "—", "vm-dns": "web-1.acme.cloud.internal"} {
		if got := doc.Find(`[data-testid="` + id + `"]`).Text(); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
}

func TestVMActions(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	ops := func() []store.Operation { return sh.vm(sh.tenant, id).Operations }

	t.Run("refused while pending", func(t *testing.T) {
		res, _ := sh.owner.post("/vms/"+id+"/actions", url.Values{"type": {"reboot"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/vms/"+id {
			t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, "Could not reboot web-1: the VM is still being created") {
			t.Errorf("flash %q", f)
		}
		if len(ops()) != 0 {
			t.Error("an operation was queued")
		}
	})

	sh.setState(id, store.VMRunning)
	for _, tc := range []struct {
		name, action, flash string
		queued              int
	}{
		{"unknown action", "explode", "Could not do that to web-1: unknown action", 0},
		{"delete goes through the delete form", "delete", "Use the delete form", 0},
		{"start a running VM", "start", "already running", 0},
		{"reboot", "reboot", "Reboot of web-1 queued.", 1},
		{"second while one is queued", "stop", "a reboot is already queued", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := sh.owner.post("/vms/"+id+"/actions", url.Values{"type": {tc.action}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d", res.StatusCode)
			}
			if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, tc.flash) {
				t.Errorf("flash %q, want %q", f, tc.flash)
			}
			if n := len(ops()); n != tc.queued {
				t.Errorf("%d operations, want %d", n, tc.queued)
			}
		})
	}
}

func TestVMDelete(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)

	for _, wrong := range []string{"", "web-2", "WEB-1", " web-1"} {
		res, doc := sh.owner.post("/vms/"+id+"/delete", url.Values{"confirm_name": {wrong}})
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("confirm %q: status %d", wrong, res.StatusCode)
		}
		if doc.Find(`[data-testid=error-confirm_name]`).Length() != 1 || doc.Find(`[data-testid=vm-name]`).Text() != "web-1" {
			t.Errorf("confirm %q: no inline error on the detail page", wrong)
		}
	}
	if d := sh.vm(sh.tenant, id); len(d.Operations) != 0 || d.State != store.VMPending {
		t.Fatalf("wrong confirmations changed the VM: %s, %d operations", d.State, len(d.Operations))
	}

	res, _ := sh.owner.post("/vms/"+id+"/delete", url.Values{"confirm_name": {"web-1"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/vms" {
		t.Fatalf("delete: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if f := flashOf(follow(sh.owner, res)); f != "Deletion of web-1 queued; its disk will be erased." {
		t.Errorf("flash %q", f)
	}
	d := sh.vm(sh.tenant, id)
	if d.State != store.VMDeleting || len(d.Operations) != 1 || d.Operations[0].Type != store.OpDelete {
		t.Errorf("after delete: %s %+v", d.State, d.Operations)
	}
	_, doc := sh.owner.get("/vms/" + id)
	if doc.Find(`[data-testid=danger-zone]`).Length() != 0 {
		t.Error("a VM being deleted still offers the delete form")
	}
}

// rsaKey returns an RSA public key of the given size in authorized_keys format.
func rsaKey(t *testing.T, bits int) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " old@box"
}

// dsaKey is a well-formed line of the refused ssh-dss type.
func dsaKey() string {
	blob := ssh.Marshal(struct {
		Name       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", big.NewInt(23), big.NewInt(11), big.NewInt(4), big.NewInt(8)})
	return "ssh-dss" + " " + base64.StdEncoding.EncodeToString(blob) + " old@box"
}

func TestSSHKeyAdd(t *testing.T) {
	sh := newShop(t)
	existing := pubKey(t, "laptop")
	res, _ := sh.owner.post("/ssh-keys", url.Values{"name": {"laptop"}, "public_key": {existing}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("paste: %d", res.StatusCode)
	}
	if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, "Key laptop added (SHA256:") {
		t.Errorf("flash %q", f)
	}
	res, _ = sh.owner.postMultipart("/ssh-keys", map[string]string{"name": "desktop"}, "key_file", "id_ed25519.pub", []byte(pubKey(t, "desk")+"\n"))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	// An empty file input is ignored in favour of the pasted key.
	res, _ = sh.owner.postMultipart("/ssh-keys", map[string]string{"name": "phone", "public_key": pubKey(t, "phone")}, "key_file", "", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("paste with empty file input: %d", res.StatusCode)
	}
	_, doc := sh.owner.get("/ssh-keys")
	if n := doc.Find(`[data-testid=key-row]`).Length(); n != 3 {
		t.Fatalf("%d keys listed, want 3", n)
	}

	for _, tc := range []struct {
		name          string
		fields        map[string]string
		file          []byte
		status        int
		field, substr string
	}{
		{name: "garbage", fields: map[string]string{"name": "x", "public_key": "hello world"}, status: 422, field: "public_key"},
		{name: "empty", fields: map[string]string{"name": "x"}, status: 422, field: "public_key"},
		{name: "dsa", fields: map[string]string{"name": "x", "public_key": dsaKey()}, status: 422, field: "public_key", substr: "DSA"},
		{name: "rsa 1024", fields: map[string]string{"name": "x", "public_key": rsaKey(t, 1024)}, status: 422, field: "public_key", substr: "1024 bits"},
		{name: "duplicate", fields: map[string]string{"name": "again", "public_key": existing}, status: 409, field: "public_key", substr: `"laptop"`},
		{name: "bad name", fields: map[string]string{"name": strings.Repeat("n", 65), "public_key": pubKey(t, "")}, status: 422, field: "name", substr: "64"},
		{name: "upload garbage", fields: map[string]string{"name": "x"}, file: []byte("not a key\n"), status: 422, field: "key_file"},
		{name: "upload too big", fields: map[string]string{"name": "x"}, file: []byte(strings.Repeat("a", sshkey.MaxInput+1)), status: 422, field: "key_file", substr: "larger than 16 KiB"},
		{name: "paste and upload", fields: map[string]string{"name": "x", "public_key": pubKey(t, "a")}, file: []byte(pubKey(t, "b")), status: 422, field: "key_file", substr: "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res *http.Response
			var doc *goquery.Document
			if tc.file != nil {
				res, doc = sh.owner.postMultipart("/ssh-keys", tc.fields, "key_file", "key.pub", tc.file)
			} else {
				form := url.Values{}
				for k, v := range tc.fields {
					form.Set(k, v)
				}
				res, doc = sh.owner.post("/ssh-keys", form)
			}
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			msg := doc.Find(`[data-testid="error-` + tc.field + `"]`).Text()
			if msg == "" || !strings.Contains(msg, tc.substr) {
				t.Errorf("error at %s: %q, want %q (page: %s)", tc.field, msg, tc.substr, doc.Find("form").Text())
			}
			if n := len(sh.keys(sh.tenant)); n != 3 {
				t.Errorf("%d keys stored, want 3", n)
			}
		})
	}
}

func TestSSHKeyDelete(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	other, otherTenant := sh.signup("Other", "owner@other.example")
	otherKey := sh.addKey(other, otherTenant, "theirs")

	if res, _ := sh.owner.post("/ssh-keys/"+otherKey+"/delete", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's key: %d", res.StatusCode)
	}
	if len(sh.keys(otherTenant)) != 1 {
		t.Error("another tenant's key was deleted")
	}
	res, _ := sh.owner.post("/ssh-keys/"+key+"/delete", nil)
	if res.StatusCode != http.StatusSeeOther || len(sh.keys(sh.tenant)) != 0 {
		t.Errorf("delete: %d, %d keys left", res.StatusCode, len(sh.keys(sh.tenant)))
	}
}

func TestReadonlyMember(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	vmID := sh.orderOK(sh.owner, "web-1", "small", key)
	ro := sh.join(sh.inviteLink(sh.owner, "ro@acme.example", store.RoleReadOnly))
	sh.inviteLink(sh.owner, "pending@acme.example", store.RoleMember)
	invs, _ := sh.e.st.ListInvitations(context.Background(), sh.tenant)
	owner, _ := sh.e.st.GetUserByEmail(context.Background(), sh.email)
	sh.owner.post("/account/tokens", url.Values{"name": {"owner-ci"}, "scope": {"write"}})

	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/vms", url.Values{"name": {"ro-1"}, "plan": {"nano"}, "image": {sh.image.ID}, "ssh_keys": {key}}},
		{"/vms/" + vmID + "/actions", url.Values{"type": {"reboot"}}},
		{"/vms/" + vmID + "/delete", url.Values{"confirm_name": {"web-1"}}},
		{"/ssh-keys", url.Values{"name": {"ro"}, "public_key": {pubKey(t, "ro")}}},
		{"/ssh-keys/" + key + "/delete", nil},
		{"/account/invitations", url.Values{"email": {"x@acme.example"}, "role": {"owner"}}},
		{"/account/invitations/" + invs[0].ID + "/delete", nil},
		{"/account/members/" + owner.ID + "/role", url.Values{"role": {"readonly"}}},
		{"/account/members/" + owner.ID + "/delete", nil},
	} {
		if res, _ := ro.post(tc.path, tc.form); res.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", tc.path, res.StatusCode)
		}
	}
	if len(sh.vms(sh.tenant)) != 1 || len(sh.keys(sh.tenant)) != 1 || sh.vm(sh.tenant, vmID).State != store.VMPending {
		t.Error("a read-only member changed something")
	}
	if res, _ := ro.get("/vms/new"); res.StatusCode != http.StatusForbidden {
		t.Errorf("GET /vms/new: %d", res.StatusCode)
	}

	// They see everything, but no form that changes the organisation.
	for path, hidden := range map[string][]string{
		"/dashboard":      {"create-box", "create-vm"},
		"/vms":            {"create-vm"},
		"/vms/" + vmID:    {"danger-zone", "vm-delete-form", "vm-actions"},
		"/ssh-keys":       {"key-add-form", "key-delete-form"},
		"/account":        {"invite-form", "member-role-form", "member-remove-form", "invitation-revoke-form"},
		"/account/tokens": {},
		"/audit":          {},
	} {
		res, doc := ro.get(path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, res.StatusCode)
		}
		for _, id := range hidden {
			if doc.Find(`[data-testid="`+id+`"]`).Length() != 0 {
				t.Errorf("%s shows %s", path, id)
			}
		}
	}

	// Tokens: a read-only member may create read tokens only.
	_, doc := ro.get("/account/tokens")
	if doc.Find(`[data-testid=token-create-form]`).Length() != 1 || doc.Find(`option[value=write]`).Length() != 0 {
		t.Error("read-only member: want the token form without the write scope")
	}
	res, doc := ro.post("/account/tokens", url.Values{"name": {"ci"}, "scope": {"write"}})
	if msg := doc.Find(`[data-testid=error-scope]`).Text(); res.StatusCode != http.StatusForbidden || !strings.Contains(msg, "read tokens only") {
		t.Errorf("write token for read-only: %d %q", res.StatusCode, msg)
	}
	res, doc = ro.post("/account/tokens", url.Values{"name": {"ci"}, "scope": {"read"}})
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid=new-token-value]`).Length() != 1 {
		t.Errorf("read token for read-only: %d", res.StatusCode)
	}
}

func TestOtherTenantIDsAreNotFound(t *testing.T) {
	sh := newShop(t)
	other, otherTenant := sh.signup("Other", "owner@other.example")
	otherKey := sh.addKey(other, otherTenant, "theirs")
	otherVM := sh.orderOK(other, "their-vm", "nano", otherKey)
	sh.setState(otherVM, store.VMRunning)
	sh.inviteLink(other, "friend@other.example", store.RoleMember)
	invs, _ := sh.e.st.ListInvitations(context.Background(), otherTenant)
	otherOwner, _ := sh.e.st.GetUserByEmail(context.Background(), "owner@other.example")
	other.post("/account/tokens", url.Values{"name": {"theirs"}, "scope": {"read"}})
	toks, _ := sh.e.st.ListAPITokens(context.Background(), otherOwner.ID)

	for _, p := range []string{"/vms/" + otherVM, "/vms/" + otherVM + "/status", "/vms/nonexistent"} {
		if res, _ := sh.owner.get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, res.StatusCode)
		}
	}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/vms/" + otherVM + "/actions", url.Values{"type": {"stop"}}},
		{"/vms/" + otherVM + "/delete", url.Values{"confirm_name": {"their-vm"}}},
		{"/ssh-keys/" + otherKey + "/delete", nil},
		{"/account/members/" + otherOwner.ID + "/role", url.Values{"role": {"readonly"}}},
		{"/account/members/" + otherOwner.ID + "/delete", nil},
		{"/account/invitations/" + invs[0].ID + "/delete", nil},
		{"/account/tokens/" + toks[0].ID + "/delete", nil},
	} {
		if res, _ := sh.owner.post(tc.path, tc.form); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", tc.path, res.StatusCode)
		}
	}
	d := sh.vm(otherTenant, otherVM)
	if d.State != store.VMRunning || len(d.Operations) != 0 {
		t.Error("another tenant's VM was changed")
	}
	if u, _ := sh.e.st.GetUser(context.Background(), otherOwner.ID); u.Role != store.RoleOwner {
		t.Error("another tenant's owner was changed")
	}
	if invs, _ := sh.e.st.ListInvitations(context.Background(), otherTenant); len(invs) != 1 {
		t.Error("another tenant's invitation was revoked")
	}
	if toks, _ := sh.e.st.ListAPITokens(context.Background(), otherOwner.ID); len(toks) != 1 {
		t.Error("another user's token was revoked")
	}
	if len(sh.keys(otherTenant)) != 1 {
		t.Error("another tenant's key was deleted")
	}
}

func TestTokens(t *testing.T) {
	sh := newShop(t)
	req := httptest.NewRequest("POST", "/account/tokens", strings.NewReader(url.Values{"name": {"ci"}, "scope": {"read"}, "_csrf": {sh.owner.csrf()}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := sh.owner.send(req)
	doc, _ := goquery.NewDocumentFromReader(res.Body)
	res.Body.Close()
	tok, _ := doc.Find(`[data-testid=new-token-value]`).Attr("value")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(tok, "fbx_") {
		t.Fatalf("create: %d %q", res.StatusCode, tok)
	}
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.Contains(c, tok) {
			t.Error("the token is in a cookie")
		}
	}
	if res.Header.Get("Location") != "" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: location %q cache-control %q", res.Header.Get("Location"), res.Header.Get("Cache-Control"))
	}
	_, doc = sh.owner.get("/account/tokens")
	if html, _ := doc.Html(); strings.Contains(html, tok) || doc.Find(`[data-testid=new-token]`).Length() != 0 {
		t.Error("the token is shown a second time")
	}
	if s := doc.Find(`[data-testid=token-scope]`).Text(); s != "read" {
		t.Errorf("scope %q", s)
	}

	code, body := sh.e.api("GET", "/api/v1/account", tok, nil)
	if code != http.StatusOK || body["scope"] != "read" {
		t.Fatalf("bearer: %d %v", code, body)
	}

	for _, tc := range []struct {
		name, tokName, scope, field string
	}{
		{"no name", "", "read", "name"},
		{"bad scope", "x", "admin", "scope"},
	} {
		res, doc := sh.owner.post("/account/tokens", url.Values{"name": {tc.tokName}, "scope": {tc.scope}})
		if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`[data-testid="error-`+tc.field+`"]`).Length() != 1 {
			t.Errorf("%s: %d", tc.name, res.StatusCode)
		}
	}

	toks, _ := sh.e.st.ListAPITokens(context.Background(), mustUser(t, sh.e, sh.email).ID)
	if len(toks) != 1 {
		t.Fatalf("%d tokens", len(toks))
	}
	if res, _ := sh.owner.post("/account/tokens/"+toks[0].ID+"/delete", nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("revoke: %d", res.StatusCode)
	}
	if code, _ := sh.e.api("GET", "/api/v1/account", tok, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", code)
	}
}

func mustUser(t *testing.T, e *env, email string) store.User {
	t.Helper()
	u, err := e.st.GetUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestStaffAccountAndTokens(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		role       string
		writeToken int
	}{
		{store.RoleAdmin, http.StatusOK},
		{store.RoleOperator, http.StatusOK},
		{store.RoleAuditor, http.StatusForbidden},
	} {
		t.Run(tc.role, func(t *testing.T) {
			b := e.staffBrowser(tc.role)
			res, doc := b.get("/account")
			if res.StatusCode != http.StatusOK || doc.Find(`[data-testid=account-tenant]`).Text() != staffOrganisation {
				t.Errorf("account: %d %q", res.StatusCode, doc.Find(`[data-testid=account-tenant]`).Text())
			}
			if doc.Find(`[data-testid=password-form]`).Length() != 1 || doc.Find(`[data-testid=invite-form]`).Length() != 0 {
				t.Error("staff account page: want the password form only")
			}
			if res, _ := b.get("/account/tokens"); res.StatusCode != http.StatusOK {
				t.Errorf("tokens: %d", res.StatusCode)
			}
			if res, _ := b.post("/account/tokens", url.Values{"name": {"w"}, "scope": {"write"}}); res.StatusCode != tc.writeToken {
				t.Errorf("write token: %d, want %d", res.StatusCode, tc.writeToken)
			}
			if res, _ := b.post("/account/tokens", url.Values{"name": {"r"}, "scope": {"read"}}); res.StatusCode != http.StatusOK {
				t.Errorf("read token: %d", res.StatusCode)
			}
			if res, _ := b.post("/account/invitations", url.Values{"email": {"x@y.example"}, "role": {"member"}}); res.StatusCode != http.StatusForbidden {
				t.Errorf("staff invitation: %d", res.StatusCode)
			}
		})
	}
}

func TestPasswordChange(t *testing.T) {
	sh := newShop(t)
	const oldPW, newPW = "correct horse battery", "a brand new password"
	for _, tc := range []struct {
		name, current, pw, confirm, field string
	}{
		{"wrong current", "wrong password!", newPW, newPW, "current_password"},
		{"too short", oldPW, "short", "short", "password"},
		{"mismatch", oldPW, newPW, newPW + "x", "password_confirm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := sh.owner.post("/account/password", url.Values{"current_password": {tc.current}, "password": {tc.pw}, "password_confirm": {tc.confirm}})
			if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`[data-testid="error-`+tc.field+`"]`).Length() != 1 {
				t.Errorf("status %d, error at %s: %q", res.StatusCode, tc.field, doc.Find(`.field-error`).Text())
			}
		})
	}

	oldCookie := sh.owner.cookies[sessionCookie]
	res, _ := sh.owner.post("/account/password", url.Values{"current_password": {oldPW}, "password": {newPW}, "password_confirm": {newPW}})
	if res.StatusCode != http.StatusSeeOther || sh.owner.cookies[sessionCookie] == oldCookie {
		t.Fatalf("change: %d, new cookie %v", res.StatusCode, sh.owner.cookies[sessionCookie] != oldCookie)
	}
	if res, _ := sh.owner.get("/dashboard"); res.StatusCode != http.StatusOK {
		t.Errorf("the fresh session does not work: %d", res.StatusCode)
	}
	stale := sh.e.browser()
	stale.cookies[sessionCookie] = oldCookie
	if res, _ := stale.get("/dashboard"); res.StatusCode/100 != 3 || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("old session: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	fresh := sh.e.browser()
	fresh.login(sh.email, newPW)

	// Guessing the current password from a session is limited.
	for range passwordChangeTries {
		sh.owner.post("/account/password", url.Values{"current_password": {"nope nope nope"}, "password": {newPW}, "password_confirm": {newPW}})
	}
	if res, _ := sh.owner.post("/account/password", url.Values{"current_password": {newPW}, "password": {oldPW}, "password_confirm": {oldPW}}); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after %d wrong guesses: %d", passwordChangeTries, res.StatusCode)
	}
}

func TestInvitationsAndMembers(t *testing.T) {
	sh := newShop(t)
	res, doc := sh.owner.post("/account/invitations", url.Values{"email": {"Dev@Acme.example"}, "role": {"member"}})
	link, _ := doc.Find(`[data-testid=invite-link] input`).Attr("value")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(link, sh.e.srv.cfg.PublicURL+"/invite/inv_") {
		t.Fatalf("invite: %d %q", res.StatusCode, link)
	}
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.Contains(c, "inv_") {
			t.Error("the invitation link is in a cookie")
		}
	}
	if r := doc.Find(`[data-testid=invitation-row]`).Text(); !strings.Contains(r, "dev@acme.example") {
		t.Errorf("pending list: %q", r)
	}
	_, doc = sh.owner.get("/account")
	if doc.Find(`[data-testid=invite-link]`).Length() != 0 {
		t.Error("the link is shown a second time")
	}

	for _, tc := range []struct {
		name, email, role, field string
		status                   int
	}{
		{"pending already", "dev@acme.example", "member", "email", 409},
		{"existing user", sh.email, "member", "email", 409},
		{"bad email", "nope", "member", "email", 422},
		{"bad role", "x@acme.example", "admin", "role", 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := sh.owner.post("/account/invitations", url.Values{"email": {tc.email}, "role": {tc.role}})
			if res.StatusCode != tc.status || doc.Find(`[data-testid="error-`+tc.field+`"]`).Length() != 1 {
				t.Errorf("status %d, want %d; errors %q", res.StatusCode, tc.status, doc.Find(".field-error").Text())
			}
			if v, _ := doc.Find(`#invite-email`).Attr("value"); v != tc.email {
				t.Errorf("email not kept: %q", v)
			}
		})
	}

	dev := sh.join(strings.SplitN(link, "/invite/", 2)[1])
	devUser := mustUser(t, sh.e, "dev@acme.example")
	me := mustUser(t, sh.e, sh.email)

	// The only owner can neither step down nor leave.
	for _, p := range []string{"/account/members/" + me.ID + "/role", "/account/members/" + me.ID + "/delete"} {
		res, _ := sh.owner.post(p, url.Values{"role": {"member"}})
		if f := flashOf(follow(sh.owner, res)); res.StatusCode != http.StatusSeeOther || !strings.Contains(f, "at least one owner") {
			t.Errorf("%s: %d %q", p, res.StatusCode, f)
		}
	}
	if mustUser(t, sh.e, sh.email).Role != store.RoleOwner {
		t.Fatal("the last owner stepped down")
	}

	res, _ = sh.owner.post("/account/members/"+devUser.ID+"/role", url.Values{"role": {"readonly"}})
	if res.StatusCode != http.StatusSeeOther || mustUser(t, sh.e, "dev@acme.example").Role != store.RoleReadOnly {
		t.Errorf("role change: %d", res.StatusCode)
	}
	if res, _ := dev.post("/ssh-keys", url.Values{"name": {"k"}, "public_key": {pubKey(t, "k")}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("demoted member still writes: %d", res.StatusCode)
	}
	res, _ = sh.owner.post("/account/members/"+devUser.ID+"/role", url.Values{"role": {"god"}})
	if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, "choose owner, member or read-only") {
		t.Errorf("bad role flash %q", f)
	}

	// With a second owner, the first may leave; their session ends.
	if res, _ := sh.owner.post("/account/members/"+devUser.ID+"/role", url.Values{"role": {"owner"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("promote: %d", res.StatusCode)
	}
	res, _ = sh.owner.post("/account/members/"+me.ID+"/delete", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Errorf("leave: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := sh.e.st.GetUser(context.Background(), me.ID); err == nil {
		t.Error("the member who left still exists")
	}

	// The new owner invites and revokes.
	sh.inviteLink(dev, "temp@acme.example", store.RoleMember)
	invs, _ := sh.e.st.ListInvitations(context.Background(), sh.tenant)
	res, _ = dev.post("/account/invitations/"+invs[0].ID+"/delete", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("revoke: %d", res.StatusCode)
	}
	if invs, _ := sh.e.st.ListInvitations(context.Background(), sh.tenant); len(invs) != 0 {
		t.Error("the invitation was not revoked")
	}
}

func TestAuditPage(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	sh.orderOK(sh.owner, "web-1", "small", key)
	other, otherTenant := sh.signup("Other", "owner@other.example")
	sh.addKey(other, otherTenant, "theirs")

	res, doc := sh.owner.get("/audit")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	text := doc.Find(`[data-testid=audit-table]`).Text()
	for _, want := range []string{"vm.create", "vm web-1", "ssh_key.add", "ssh key laptop", sh.email} {
		if !strings.Contains(text, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	if strings.Contains(text, "owner@other.example") || strings.Contains(text, "theirs") {
		t.Error("the audit page shows another tenant's entries")
	}
	res, doc = sh.owner.get("/audit?per_page=2&page=2")
	if res.StatusCode != http.StatusOK || doc.Find(`[data-testid=audit-row]`).Length() != 1 || doc.Find(`[data-testid=pager-prev]`).Length() != 1 {
		t.Errorf("page 2: %d, %d rows", res.StatusCode, doc.Find(`[data-testid=audit-row]`).Length())
	}
}

func TestSuspendedTenantIsRefused(t *testing.T) {
	sh := newShop(t)
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	if err := sh.e.st.SuspendTenant(context.Background(), store.Actor{Email: "test"}, sh.tenant, "unpaid invoice"); err != nil {
		t.Fatal(err)
	}
	// The session ended with the suspension; the owner signs in again.
	if res, _ := sh.owner.get("/dashboard"); res.StatusCode/100 != 3 || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("old session after suspension: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	sh.owner.login(sh.email, "correct horse battery")
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"order", "/vms", url.Values{"name": {"web-1"}, "plan": {"nano"}, "image": {sh.image.ID}, "ssh_keys": {key}}},
		{"add key", "/ssh-keys", url.Values{"name": {"k"}, "public_key": {pubKey(t, "k")}}},
		{"invite", "/account/invitations", url.Values{"email": {"x@acme.example"}, "role": {"member"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := sh.owner.post(tc.path, tc.form)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(doc.Find(`[data-testid=form-error]`).Text(), "unpaid invoice") {
				t.Errorf("status %d, form error %q", res.StatusCode, doc.Find(`[data-testid=form-error]`).Text())
			}
		})
	}
	if len(sh.vms(sh.tenant)) != 0 || len(sh.keys(sh.tenant)) != 1 {
		t.Error("a suspended tenant changed something")
	}
}
