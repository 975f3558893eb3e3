package views

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

const testCSRF = `tok"en<&>`

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))

func owner() *User  { return &User{Email: "ann@example.org", TenantName: "Acme", Role: "owner"} }
func reader() *User { return &User{Email: "rob@example.org", TenantName: "Acme", Role: "readonly"} }
func staff() *User  { return &User{Email: "ops@fibrix.example", Role: "operator", Staff: true} }

func page(u *User, section string) Page {
	return Page{Title: "Test", Section: section, User: u, CSRF: testCSRF, Flash: &Flash{Kind: "success", Message: "Saved."}}
}

func render(t *testing.T, c templ.Component) (*goquery.Document, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc, buf.String()
}

func mustCount(t *testing.T, doc *goquery.Document, sel string, want int) *goquery.Selection {
	t.Helper()
	s := doc.Find(sel)
	if s.Length() != want {
		t.Errorf("%s: found %d, want %d", sel, s.Length(), want)
	}
	return s
}

func mustHave(t *testing.T, doc *goquery.Document, sel string) *goquery.Selection {
	t.Helper()
	s := doc.Find(sel)
	if s.Length() == 0 {
		t.Errorf("%s: not found", sel)
	}
	return s
}

func testID(id string) string { return `[data-testid="` + id + `"]` }

// ---- sample data ----

func sampleVMs(n int) []VMRow {
	var out []VMRow
	states := []string{"running", "pending", "stopped", "error", "provisioning"}
	for i := 0; i < n; i++ {
		out = append(out, VMRow{ID: string(rune('a' + i)), Name: "web-" + itoa(i), State: states[i%len(states)], Plan: "S", Image: "Debian 12", CreatedAt: t0})
	}
	return out
}

func sampleDetail(u *User, state string, ops []OperationRow, steps []TimelineStep) VMDetailView {
	return VMDetailView{
		Page: page(u, "vms"),
		VM: VMInfo{ID: "vm 1/x", Name: "web-1", State: state, DesiredState: "running", Plan: "M", VCPUs: 2,
			MemoryMiB: 4096, DiskGiB: 40, Image: "Debian 12", IP: "192.0.2.10", DNSName: "web-1.acme.fibrix.cloud",
			Keys: []string{"laptop", "ci"}, CreatedAt: t0},
		Timeline:   steps,
		Operations: ops,
		CanWrite:   u.CanWrite(),
	}
}

var sampleSteps = []TimelineStep{
	{Step: "allocate", State: "done", StartedAt: t0, FinishedAt: t0.Add(time.Second)},
	{Step: "install image", State: "running", StartedAt: t0.Add(2 * time.Second), Message: "copying"},
}

func samplePager(total int) Pager {
	return Pager{Page: 2, PerPage: 10, Total: total, Path: "/vms", Query: url.Values{"state": {"running"}}}
}

// allPages renders every page with rows and without, for several users.
func allPages() map[string]templ.Component {
	m := map[string]templ.Component{}
	for name, u := range map[string]*User{"owner": owner(), "readonly": reader()} {
		m["dashboard/"+name] = Dashboard(DashboardView{Page: page(u, "dashboard"),
			Quotas:    []QuotaRow{{"instances", "Instances", 2, 5, ""}, {"memory", "Memory", 6144, 8192, "MiB"}, {"disk", "Disk", 100, 100, "GiB"}},
			RecentVMs: sampleVMs(3), CanCreate: true, CreateHint: "You can still create 3 instances"})
		m["dashboard-empty/"+name] = Dashboard(DashboardView{Page: page(u, "dashboard"), CanCreate: false, Reason: "Memory quota used up"})
		m["vmlist/"+name] = VMList(VMListView{Page: page(u, "vms"), VMs: sampleVMs(5), Pager: samplePager(25)})
		m["vmlist-empty/"+name] = VMList(VMListView{Page: page(u, "vms"), Pager: samplePager(0)})
		m["vmnew/"+name] = VMNew(sampleVMNew(u))
		m["vmnew-nokeys/"+name] = VMNew(VMNewView{Page: page(u, "vms")})
		m["vmdetail/"+name] = VMDetail(sampleDetail(u, "running", nil, sampleSteps))
		m["vmdetail-pending/"+name] = VMDetail(sampleDetail(u, "pending", []OperationRow{{Type: "create", State: "queued", CreatedAt: t0}}, nil))
		m["sshkeys/"+name] = SSHKeys(SSHKeysView{Page: page(u, "ssh-keys"), Used: 1, Limit: 10, Errors: FormErrors{"public_key": "not a public key"},
			Keys: []SSHKeyRow{{ID: "k1", Name: "laptop", Type: "ssh-ed25519", Fingerprint: "SHA256:abc", Comment: "ann@laptop", CreatedAt: t0, AddedBy: "ann@example.org"}}})
		m["sshkeys-empty/"+name] = SSHKeys(SSHKeysView{Page: page(u, "ssh-keys"), Limit: 10})
		m["account/"+name] = Account(AccountView{Page: page(u, "account"), TenantName: "Acme", IsOwner: u.Role == "owner",
			Me:            MemberRow{ID: "1", Email: u.Email, Role: u.Role, CreatedAt: t0, IsMe: true},
			Members:       []MemberRow{{ID: "1", Email: u.Email, Role: u.Role, CreatedAt: t0, IsMe: true}, {ID: "2", Email: "bob@example.org", Role: "member", CreatedAt: t0}},
			Invitations:   []InvitationRow{{ID: "i1", Email: "carl@example.org", Role: "readonly", ExpiresAt: t0}},
			NewInviteLink: "https://portal.example/invite/abc",
		})
		m["tokens/"+name] = Tokens(TokensView{Page: page(u, "tokens"), NewToken: "fx_secret",
			Tokens: []TokenRow{{ID: "t1", Name: "ci", Scope: "write", Prefix: "fx_ab", CreatedAt: t0}}})
		m["tokens-empty/"+name] = Tokens(TokensView{Page: page(u, "tokens")})
		m["audit/"+name] = Audit(AuditView{Page: page(u, "audit"), Pager: samplePager(30),
			Entries: []AuditRow{{Time: t0, Actor: "ann@example.org", Action: "vm.create", Target: "web-1", SourceIP: "198.51.100.7", Result: "success"}}})
		m["audit-empty/"+name] = Audit(AuditView{Page: page(u, "audit"), Pager: samplePager(0)})
	}
	m["login"] = Login(LoginView{Page: page(nil, ""), Email: "x@example.org", Next: "/vms", Errors: FormErrors{"": "Wrong email or password."}})
	m["signup"] = Signup(SignupView{Page: page(nil, ""), Errors: FormErrors{"email": "already taken"}})
	m["invite"] = AcceptInvite(AcceptInviteView{Page: page(nil, ""), Token: "tok/1", TenantName: "Acme", Email: "carl@example.org", Role: "member"})
	m["error404"] = ErrorPage(ErrorView{Page: page(nil, ""), Status: 404})
	m["error403-staff"] = ErrorPage(ErrorView{Page: page(staff(), ""), Status: 403, Message: "Auditors cannot change plans."})
	return m
}

func sampleVMNew(u *User) VMNewView {
	return VMNewView{
		Page: page(u, "vms"),
		Plans: []PlanOption{
			{ID: "1", Name: "S", VCPUs: 1, MemoryMiB: 1024, DiskGiB: 20, Fits: true},
			{ID: "2", Name: "L", VCPUs: 4, MemoryMiB: 8192, DiskGiB: 160, Fits: false, Reason: "needs 8 GiB RAM; 2.5 GiB left in your quota"},
		},
		Images:    []ImageOption{{ID: "10", Name: "Debian", OS: "debian", Version: "12"}, {ID: "11", Name: "Ubuntu", OS: "ubuntu", Version: "24.04"}},
		Keys:      []KeyOption{{ID: "k1", Name: "laptop", Fingerprint: "SHA256:abc"}, {ID: "k2", Name: "ci", Fingerprint: "SHA256:def"}},
		Name:      "web-1",
		PlanID:    "1",
		ImageID:   "11",
		KeyIDs:    []string{"k2"},
		Remaining: "Left in your quota: 3 instances, 4 vCPU, 6 GiB RAM",
		Errors:    FormErrors{"name": "Name is taken."},
	}
}

// ---- tests ----

func TestEveryPostFormHasCSRF(t *testing.T) {
	for name, c := range allPages() {
		doc, _ := render(t, c)
		forms := doc.Find("form")
		forms.Each(func(i int, f *goquery.Selection) {
			if m, _ := f.Attr("method"); strings.ToLower(m) != "post" {
				t.Errorf("%s: form %d has method %q", name, i, m)
				return
			}
			in := f.Find(`input[type="hidden"][name="_csrf"]`)
			if in.Length() != 1 {
				t.Errorf("%s: form %d (%s) has %d _csrf inputs", name, i, f.AttrOr("action", ""), in.Length())
				return
			}
			if v, _ := in.Attr("value"); v != testCSRF {
				t.Errorf("%s: form %d csrf value %q", name, i, v)
			}
			if f.AttrOr("data-testid", "") == "" {
				t.Errorf("%s: form %d (%s) lacks data-testid", name, i, f.AttrOr("action", ""))
			}
		})
		body := doc.Find("body")
		var h map[string]string
		if err := json.Unmarshal([]byte(body.AttrOr("hx-headers", "")), &h); err != nil || h["X-CSRF-Token"] != testCSRF {
			t.Errorf("%s: hx-headers = %q (%v)", name, body.AttrOr("hx-headers", ""), err)
		}
	}
}

func TestLayout(t *testing.T) {
	doc, _ := render(t, VMList(VMListView{Page: page(owner(), "vms"), VMs: sampleVMs(1)}))
	if got := doc.Find("title").Text(); got != "Test · Fibrix Cloud" {
		t.Errorf("title = %q", got)
	}
	mustCount(t, doc, testID("nav-vms")+`[aria-current="page"]`, 1)
	mustCount(t, doc, testID("nav-admin-tenants"), 0)
	mustHave(t, doc, `a[href="/audit"]`)
	mustHave(t, doc, `a[href="/account/tokens"]`)
	if got := doc.Find(testID("user-email")).Text(); got != "ann@example.org" {
		t.Errorf("user email = %q", got)
	}
	mustCount(t, doc, testID("user-tenant"), 1)
	mustCount(t, doc, `form[action="/logout"]`+testID("logout-form"), 1)
	mustCount(t, doc, testID("flash")+`[data-kind="success"]`, 1)

	doc, _ = render(t, ErrorPage(ErrorView{Page: page(staff(), "admin-plans"), Status: 403}))
	mustCount(t, doc, testID("nav-admin-plans")+`[aria-current="page"]`, 1)
	mustCount(t, doc, testID("nav-dashboard"), 0)
	for _, href := range []string{"/admin/tenants", "/admin/users", "/admin/vms", "/admin/plans", "/admin/images", "/admin/quotas", "/admin/audit"} {
		mustCount(t, doc, testID("main-nav")+` a[href="`+href+`"]`, 1)
	}
	mustCount(t, doc, testID("user-tenant"), 0)
	mustHave(t, doc, testID("error-title"))

	doc, _ = render(t, ErrorPage(ErrorView{Page: Page{Title: "Not found"}, Status: 404}))
	mustCount(t, doc, testID("main-nav"), 0)
	mustCount(t, doc, testID("logout-form"), 0)
	mustCount(t, doc, testID("flash"), 0)
	if got := doc.Find(testID("error-status")).Text(); got != "404" {
		t.Errorf("status = %q", got)
	}
}

func TestLoginForm(t *testing.T) {
	doc, _ := render(t, allPages()["login"])
	f := mustCount(t, doc, `form[action="/login"]`+testID("login-form"), 1)
	for _, n := range []string{"email", "password", "next"} {
		if f.Find(`[name="`+n+`"]`).Length() != 1 {
			t.Errorf("login: field %s missing", n)
		}
	}
	mustCount(t, doc, testID("form-error"), 1)
	mustCount(t, doc, testID("main-nav"), 0)

	doc, _ = render(t, allPages()["signup"])
	f = mustCount(t, doc, `form[action="/signup"]`, 1)
	for _, n := range []string{"email", "password", "password_confirm", "tenant"} {
		if f.Find(`[name="`+n+`"]`).Length() != 1 {
			t.Errorf("signup: field %s missing", n)
		}
	}
	mustCount(t, doc, testID("error-email"), 1)
	mustCount(t, doc, `input[name="email"][aria-invalid="true"][aria-describedby="email-error"]`, 1)
	mustCount(t, doc, `input[name="password"][aria-invalid]`, 0)

	doc, _ = render(t, allPages()["invite"])
	mustCount(t, doc, `form[action="/invite/tok%2F1"]`, 1)
	if got := doc.Find(testID("invite-email")).AttrOr("value", ""); got != "carl@example.org" {
		t.Errorf("invite email = %q", got)
	}
}

func TestVMNewPlans(t *testing.T) {
	doc, _ := render(t, VMNew(sampleVMNew(owner())))
	f := mustCount(t, doc, `form[action="/vms"]`+testID("vm-new-form"), 1)
	for _, n := range []string{"name", "plan", "image", "ssh_keys", "user_data"} {
		if f.Find(`[name="`+n+`"]`).Length() == 0 {
			t.Errorf("field %s missing", n)
		}
	}
	off := mustCount(t, doc, testID("plan-card")+`[data-fits="false"]`, 1)
	if !off.HasClass("plan-disabled") || off.Find(`input[disabled]`).Length() != 1 {
		t.Errorf("unfit plan is not disabled")
	}
	if got := off.Find(testID("plan-reason")).Text(); got != "needs 8 GiB RAM; 2.5 GiB left in your quota" {
		t.Errorf("reason = %q", got)
	}
	on := mustCount(t, doc, testID("plan-card")+`[data-fits="true"]`, 1)
	if on.Find(`input[checked]`).Length() != 1 || on.Find(`input[disabled]`).Length() != 0 {
		t.Errorf("fitting plan not selected/enabled")
	}
	if got := doc.Find(`select[name="image"] option[selected]`).AttrOr("value", ""); got != "11" {
		t.Errorf("selected image = %q", got)
	}
	if got := doc.Find(`input[name="ssh_keys"][checked]`).AttrOr("value", ""); got != "k2" {
		t.Errorf("checked key = %q", got)
	}
	mustCount(t, doc, `input[name="name"][aria-invalid="true"]`, 1)
	mustHave(t, doc, testID("error-name"))
	mustCount(t, doc, testID("remaining-quota"), 1)
	mustCount(t, doc, testID("no-plan-fits"), 0)

	v := sampleVMNew(owner())
	for i := range v.Plans {
		v.Plans[i].Fits, v.Plans[i].Reason = false, "quota used up"
	}
	doc, _ = render(t, VMNew(v))
	mustCount(t, doc, testID("no-plan-fits"), 1)
	mustCount(t, doc, testID("vm-create-submit")+`[disabled]`, 1)

	doc, _ = render(t, VMNew(VMNewView{Page: page(owner(), "vms"), Plans: v.Plans}))
	mustCount(t, doc, testID("vm-new-form"), 0)
	mustCount(t, doc, testID("empty-state")+` a[href="/ssh-keys"]`, 1)
}

func TestVMStatusPolling(t *testing.T) {
	cases := []struct {
		name  string
		state string
		ops   []OperationRow
		poll  bool
	}{
		{"pending", "pending", nil, true},
		{"provisioning", "provisioning", []OperationRow{{Type: "create", State: "running"}}, true},
		{"running no ops", "running", nil, false},
		{"running finished ops", "running", []OperationRow{{Type: "create", State: "done"}}, false},
		{"running queued stop", "running", []OperationRow{{Type: "stop", State: "queued"}}, true},
		{"error", "error", []OperationRow{{Type: "create", State: "failed"}}, false},
		{"deleted", "deleted", nil, false},
		{"stopping", "stopping", nil, true},
	}
	for _, c := range cases {
		doc, _ := render(t, VMStatus(sampleDetail(owner(), c.state, c.ops, sampleSteps)))
		s := mustCount(t, doc, `#vm-status`+testID("vm-status"), 1)
		trig, has := s.Attr("hx-trigger")
		if has != c.poll {
			t.Errorf("%s: hx-trigger present = %v, want %v", c.name, has, c.poll)
		}
		if c.poll {
			if trig != "every 3s" || s.AttrOr("hx-get", "") != "/vms/vm%201%2Fx/status" || s.AttrOr("hx-swap", "") != "outerHTML" {
				t.Errorf("%s: hx attrs %q %q %q", c.name, trig, s.AttrOr("hx-get", ""), s.AttrOr("hx-swap", ""))
			}
		}
		if got := s.Find(testID("state-badge")).AttrOr("data-state", ""); got != c.state {
			t.Errorf("%s: badge state %q", c.name, got)
		}
	}

	doc, _ := render(t, VMStatus(sampleDetail(owner(), "pending", nil, nil)))
	if !strings.Contains(doc.Find(testID("timeline-waiting")).Text(), "Waiting for the provisioner to pick up this order") {
		t.Errorf("missing waiting message")
	}
	mustCount(t, doc, testID("timeline"), 0)

	doc, _ = render(t, VMStatus(sampleDetail(owner(), "provisioning", nil, sampleSteps)))
	mustCount(t, doc, testID("timeline-step"), 2)
	mustCount(t, doc, testID("timeline-step")+`[data-state="running"]`, 1)
	mustCount(t, doc, testID("timeline-waiting"), 0)
}

func TestVMDetailWriteVsReadonly(t *testing.T) {
	doc, _ := render(t, VMDetail(sampleDetail(owner(), "running", nil, sampleSteps)))
	mustCount(t, doc, testID("vm-delete-form")+` input[name="confirm_name"]`, 1)
	mustCount(t, doc, `form[action="/vms/vm%201%2Fx/delete"]`, 1)
	mustHave(t, doc, testID("danger-zone"))
	if !strings.Contains(doc.Find(testID("danger-zone")).Text(), "disk is erased") {
		t.Errorf("no disk erase warning")
	}
	for _, a := range []string{"stop", "reboot", "rebuild"} {
		f := mustCount(t, doc, testID("vm-action-"+a), 1)
		if f.AttrOr("action", "") != "/vms/vm%201%2Fx/actions" || f.Find(`input[name="type"]`).AttrOr("value", "") != a {
			t.Errorf("action %s form wrong", a)
		}
	}
	mustCount(t, doc, testID("vm-action-start"), 0)
	mustHave(t, doc, testID("operations")+","+testID("timeline"))

	doc, _ = render(t, VMDetail(sampleDetail(reader(), "running", nil, sampleSteps)))
	doc.Find("form").Each(func(_ int, f *goquery.Selection) {
		if f.AttrOr("action", "") != "/logout" {
			t.Errorf("readonly sees form %s", f.AttrOr("action", ""))
		}
	})
	mustCount(t, doc, "button:not("+testID("logout-button")+")", 0)
	mustCount(t, doc, testID("vm-status"), 1)

	// a VM with a queued operation shows no action buttons
	doc, _ = render(t, VMDetail(sampleDetail(owner(), "running", []OperationRow{{Type: "reboot", State: "queued"}}, nil)))
	mustCount(t, doc, testID("vm-actions"), 0)
	mustCount(t, doc, testID("vm-actions-busy"), 1)
}

func TestEmptyStates(t *testing.T) {
	p := allPages()
	for _, name := range []string{"vmlist-empty/owner", "sshkeys-empty/owner", "tokens-empty/owner", "audit-empty/owner", "dashboard-empty/owner", "vmnew-nokeys/owner"} {
		doc, _ := render(t, p[name])
		mustCount(t, doc, testID("empty-state"), 1)
	}
	for _, name := range []string{"vmlist/owner", "sshkeys/owner", "tokens/owner", "audit/owner", "dashboard/owner"} {
		doc, _ := render(t, p[name])
		mustCount(t, doc, testID("empty-state"), 0)
	}
	doc, _ := render(t, p["vmlist-empty/owner"])
	mustCount(t, doc, testID("empty-state")+` a[href="/vms/new"]`, 1)
	doc, _ = render(t, p["vmlist-empty/readonly"])
	mustCount(t, doc, testID("empty-state")+` a`, 0)
	mustCount(t, doc, testID("create-vm"), 0)
}

func TestListsAndRows(t *testing.T) {
	p := allPages()
	doc, _ := render(t, p["vmlist/owner"])
	mustCount(t, doc, testID("vm-row"), 5)
	mustCount(t, doc, testID("vm-row")+" "+testID("state-badge"), 5)
	mustHave(t, doc, testID("pagination")+` a[href="/vms?page=3&state=running"]`)
	if got := doc.Find(testID("pagination")).Text(); !strings.Contains(got, "Showing 11–20 of 25") {
		t.Errorf("pagination text %q", got)
	}

	doc, _ = render(t, p["dashboard/owner"])
	mustCount(t, doc, testID("quota-bar"), 3)
	if got := doc.Find(testID("quota-memory") + " " + testID("quota-value")).Text(); got != "6 GiB / 8 GiB" {
		t.Errorf("memory quota = %q", got)
	}
	mustCount(t, doc, testID("quota-disk")+" .quota-full", 1)
	mustCount(t, doc, `a[href="/vms/new"]`+testID("create-vm"), 1)
	mustCount(t, doc, testID("recent-vm-row"), 3)
	doc, _ = render(t, p["dashboard-empty/owner"])
	mustCount(t, doc, `button[disabled]`+testID("create-vm"), 1)
	if got := doc.Find(testID("create-reason")).Text(); got != "Memory quota used up" {
		t.Errorf("reason %q", got)
	}

	doc, _ = render(t, p["sshkeys/owner"])
	mustCount(t, doc, testID("key-row"), 1)
	f := mustCount(t, doc, `form[action="/ssh-keys"][enctype="multipart/form-data"]`, 1)
	for _, n := range []string{"name", "public_key", "key_file"} {
		if f.Find(`[name="`+n+`"]`).Length() != 1 {
			t.Errorf("ssh key field %s missing", n)
		}
	}
	mustCount(t, doc, `textarea[name="public_key"][aria-invalid="true"]`, 1)
	mustCount(t, doc, `form[action="/ssh-keys/k1/delete"]`, 1)
	doc, _ = render(t, p["sshkeys/readonly"])
	mustCount(t, doc, "form"+testID("key-add-form")+","+testID("key-delete-form"), 0)
	doc, _ = render(t, SSHKeys(SSHKeysView{Page: page(owner(), "ssh-keys"), Used: 2, Limit: 2}))
	mustCount(t, doc, testID("key-quota-full"), 1)

	doc, _ = render(t, p["account/owner"])
	mustCount(t, doc, testID("member-row"), 2)
	mustCount(t, doc, testID("member-you"), 1)
	mustCount(t, doc, `form[action="/account/members/2/role"] select[name="role"]`, 1)
	mustCount(t, doc, `form[action="/account/members/2/delete"]`, 1)
	mustCount(t, doc, `form[action="/account/members/1/delete"]`, 0)
	mustCount(t, doc, `form[action="/account/invitations"] [name="email"], form[action="/account/invitations"] [name="role"]`, 2)
	mustCount(t, doc, `form[action="/account/invitations/i1/delete"]`, 1)
	mustCount(t, doc, testID("invite-link"), 1)
	mustCount(t, doc, `form[action="/account/password"] [name="current_password"], form[action="/account/password"] [name="password"], form[action="/account/password"] [name="password_confirm"]`, 3)
	doc, _ = render(t, p["account/readonly"])
	mustCount(t, doc, testID("invite-form")+","+testID("member-role-form")+","+testID("member-remove-form")+","+testID("invite-link"), 0)
	mustCount(t, doc, testID("password-form"), 1)

	doc, _ = render(t, p["tokens/owner"])
	mustCount(t, doc, testID("token-row"), 1)
	if got := doc.Find(testID("new-token-value")).AttrOr("value", ""); got != "fx_secret" {
		t.Errorf("new token = %q", got)
	}
	mustCount(t, doc, `form[action="/account/tokens"] [name="name"], form[action="/account/tokens"] select[name="scope"]`, 2)
	mustCount(t, doc, `form[action="/account/tokens/t1/delete"]`, 1)
	if got := doc.Find(testID("token-row") + " td").Eq(4).Text(); got != "Never" {
		t.Errorf("last used = %q", got)
	}

	doc, _ = render(t, p["audit/owner"])
	mustCount(t, doc, testID("audit-row"), 1)
	mustCount(t, doc, testID("result-badge")+`[data-result="success"]`, 1)
}

func TestStateBadges(t *testing.T) {
	for _, s := range []string{"pending", "provisioning", "running", "stopped", "starting", "stopping", "rebooting", "rebuilding", "deleting", "deleted", "error"} {
		doc, _ := render(t, StateBadge(s))
		b := mustCount(t, doc, testID("state-badge"), 1)
		if !b.HasClass("state-"+s) || strings.TrimSpace(b.Text()) != s {
			t.Errorf("badge %s: class=%q text=%q", s, b.AttrOr("class", ""), b.Text())
		}
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[int64]string{0: "0 MiB", 512: "512 MiB", 1024: "1 GiB", 2048: "2 GiB", 1536: "1.5 GiB", 2560: "2.5 GiB", 1048576: "1024 GiB"} {
		if got := FormatMiB(in); got != want {
			t.Errorf("FormatMiB(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{20: "20 GiB", 1024: "1 TiB", 1536: "1.5 TiB"} {
		if got := FormatGiB(in); got != want {
			t.Errorf("FormatGiB(%d) = %q, want %q", in, got, want)
		}
	}
	if got := FormatTime(t0); got != "2025-03-04 04:06 UTC" {
		t.Errorf("FormatTime = %q", got)
	}
	if got := FormatTime(time.Time{}); got != "—" {
		t.Errorf("FormatTime(zero) = %q", got)
	}
	if got := CSRFHeaders(`a"b`); got != `{"X-CSRF-Token":"a\"b"}` {
		t.Errorf("CSRFHeaders = %q", got)
	}
	if got := QuotaPercent(3, 2); got != 100 {
		t.Errorf("QuotaPercent = %d", got)
	}
	if got := pageNumbers(5, 10); len(got) != 9 || got[1] != 0 || got[7] != 0 {
		t.Errorf("pageNumbers = %v", got)
	}
}

func TestVMStatusBusyText(t *testing.T) {
	base := VMDetailView{Page: Page{CSRF: "tok", User: &User{Email: "o@x.example", Role: "owner"}}, CanWrite: true,
		VM: VMInfo{ID: "vm1", Name: "web", State: "provisioning"}}
	var b strings.Builder
	if err := VMStatus(base).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Actions become available once the VM has been created.") {
		t.Errorf("provisioning VM without operations:\n%s", b.String())
	}
	base.Operations = []OperationRow{{Type: "start", State: "queued"}}
	b.Reset()
	if err := VMStatus(base).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "when the current operation has finished") {
		t.Errorf("VM with a queued operation:\n%s", b.String())
	}
}

// A VM in a transitional state other than creation, with no operation left
// outstanding, is not said to be waiting for its creation.
func TestVMStatusBusyTextAfterCreation(t *testing.T) {
	v := VMDetailView{Page: Page{CSRF: "tok", User: owner()}, CanWrite: true,
		VM: VMInfo{ID: "vm1", Name: "web", State: "stopping"}}
	doc, html := render(t, VMStatus(v))
	mustCount(t, doc, testID("vm-actions-busy"), 1)
	if !strings.Contains(html, "when the current operation has finished") {
		t.Errorf("stopping VM:\n%s", html)
	}
	v.VM.State = "pending"
	doc, html = render(t, VMStatus(v))
	mustCount(t, doc, testID("vm-actions"), 0)
	if !strings.Contains(html, "Actions become available once the VM has been created.") || strings.Contains(html, "current operation") {
		t.Errorf("pending VM without operations:\n%s", html)
	}
}
