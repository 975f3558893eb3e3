package views

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

const adminTestCSRF = "csrf-token-123"

var adminTestTime = time.Date(2026, 3, 14, 9, 26, 0, 0, time.UTC)

func adminTestPage(role, section string) Page {
	return Page{
		Title:   "Admin",
		Section: section,
		User:    &User{Email: role + "@fibrix.example", Role: role, Staff: true},
		CSRF:    adminTestCSRF,
	}
}

var adminTestRoles = []string{"admin", "operator", "auditor"}

func adminRender(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

// tid selects by data-testid.
func tid(id string) string { return `[data-testid="` + id + `"]` }

// adminPostForms are the state-changing forms inside the page body (the
// layout's logout form is not counted).
func adminPostForms(doc *goquery.Document) *goquery.Selection {
	return doc.Find(`main form`).FilterFunction(func(_ int, s *goquery.Selection) bool {
		return strings.EqualFold(s.AttrOr("method", "get"), "post")
	})
}

func adminMustHave(t *testing.T, doc *goquery.Document, sel string) *goquery.Selection {
	t.Helper()
	s := doc.Find(sel)
	if s.Length() == 0 {
		t.Fatalf("missing %s", sel)
	}
	return s
}

func adminMustNotHave(t *testing.T, doc *goquery.Document, sel string) {
	t.Helper()
	if n := doc.Find(sel).Length(); n != 0 {
		t.Fatalf("unexpected %s (%d found)", sel, n)
	}
}

// adminCheckPostForms checks every POST form has the CSRF field and only
// known action paths, and returns the actions.
func adminCheckPostForms(t *testing.T, doc *goquery.Document) []string {
	t.Helper()
	var actions []string
	adminPostForms(doc).Each(func(_ int, f *goquery.Selection) {
		action := f.AttrOr("action", "")
		actions = append(actions, action)
		tok := f.Find(`input[type="hidden"][name="_csrf"]`)
		if tok.Length() != 1 || tok.AttrOr("value", "") != adminTestCSRF {
			t.Errorf("form %s: want one _csrf field with the token, got %d", action, tok.Length())
		}
		if !strings.HasPrefix(action, "/admin/") {
			t.Errorf("form action %q is not under /admin/", action)
		}
		if f.Find(`button[type="submit"]`).Length() == 0 {
			t.Errorf("form %s has no submit button", action)
		}
	})
	return actions
}

func adminInputNames(f *goquery.Selection) []string {
	var names []string
	f.Find("input, select, textarea").Each(func(_ int, s *goquery.Selection) {
		if n := s.AttrOr("name", ""); n != "" && n != "_csrf" {
			names = append(names, n)
		}
	})
	return names
}

func adminSameNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: field names %v, want %v", what, got, want)
	}
}

func adminQuotaSample(withUsed bool) []AdminQuotaField {
	f := []AdminQuotaField{
		{Name: "instances", Label: "Instances", Used: 3, Limit: 5},
		{Name: "vcpus", Label: "vCPUs", Used: 4, Limit: 8},
		{Name: "memory_mib", Label: "Memory", Used: 6144, Limit: 8192, Unit: "MiB"},
		{Name: "disk_gib", Label: "Disk", Used: 120, Limit: 200, Unit: "GiB"},
		{Name: "ssh_keys", Label: "SSH keys", Used: 2, Limit: 10},
		{Name: "port_forwards", Label: "Port forwards", Used: 0, Limit: 4},
	}
	if !withUsed {
		for i := range f {
			f[i].Used = 0
		}
	}
	return f
}

var adminQuotaNames = []string{"instances", "vcpus", "memory_mib", "disk_gib", "ssh_keys", "port_forwards"}

// --- tenants -------------------------------------------------------------

func adminTenantsSample(role string) AdminTenantsView {
	return AdminTenantsView{
		Page:  adminTestPage(role, "admin-tenants"),
		Query: "acme",
		Tenants: []AdminTenantRow{
			{ID: "7", Name: "Acme Ltd", OwnerEmail: "owner@acme.example", Status: "active", VMCount: 3, CreatedAt: adminTestTime},
			{ID: "9", Name: "Acme Farm", OwnerEmail: "farm@acme.example", Status: "suspended", VMCount: 0, CreatedAt: adminTestTime},
		},
		Pager: Pager{Page: 1, PerPage: 2, Total: 5, Path: "/admin/tenants", Query: url.Values{"q": {"acme"}}},
	}
}

func TestAdminTenantsList(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			doc := adminRender(t, AdminTenants(adminTenantsSample(role)))
			if n := adminPostForms(doc).Length(); n != 0 {
				t.Errorf("tenants list has %d POST forms, want 0", n)
			}
			q := adminMustHave(t, doc, tid("admin-tenants-q"))
			if q.AttrOr("name", "") != "q" || q.AttrOr("value", "") != "acme" {
				t.Errorf("search box: name=%q value=%q", q.AttrOr("name", ""), q.AttrOr("value", ""))
			}
			if got := doc.Find(tid("admin-tenants-search")).AttrOr("action", ""); got != "/admin/tenants" {
				t.Errorf("search action %q", got)
			}
			rows := doc.Find(tid("admin-tenant-row"))
			if rows.Length() != 2 {
				t.Fatalf("rows = %d, want 2", rows.Length())
			}
			first := rows.First()
			if href := first.Find(tid("admin-tenant-link")).AttrOr("href", ""); href != "/admin/tenants/7" {
				t.Errorf("tenant link %q", href)
			}
			if got := first.Find(tid("admin-tenant-owner")).Text(); got != "owner@acme.example" {
				t.Errorf("owner %q", got)
			}
			if got := first.Find(tid("admin-tenant-vms")).Text(); got != "3" {
				t.Errorf("vm count %q", got)
			}
			if got := rows.Eq(1).Find(tid("tenant-status")).AttrOr("data-status", ""); got != "suspended" {
				t.Errorf("status %q", got)
			}
			if !strings.Contains(first.Text(), "2026-03-14 09:26 UTC") {
				t.Errorf("created time missing in %q", first.Text())
			}
			adminMustHave(t, doc, tid("pagination"))
			next := adminMustHave(t, doc, tid("pager-next")).AttrOr("href", "")
			if !strings.Contains(next, "q=acme") || !strings.Contains(next, "page=2") {
				t.Errorf("next page link %q loses the query", next)
			}
			adminMustNotHave(t, doc, tid("admin-tenants-empty"))
		})
	}
}

func TestAdminTenantsEmpty(t *testing.T) {
	v := adminTenantsSample("auditor")
	v.Tenants = nil
	v.Pager = Pager{Page: 1, PerPage: 20, Path: "/admin/tenants"}
	doc := adminRender(t, AdminTenants(v))
	empty := adminMustHave(t, doc, tid("admin-tenants-empty"))
	if empty.Find(tid("empty-state")).Length() != 1 {
		t.Error("empty state component missing")
	}
	if !strings.Contains(empty.Text(), "acme") {
		t.Errorf("empty state should mention the query: %q", empty.Text())
	}
	adminMustNotHave(t, doc, tid("admin-tenants-table"))

	v.Query = ""
	doc = adminRender(t, AdminTenants(v))
	if !strings.Contains(doc.Find(tid("admin-tenants-empty")).Text(), "No tenants yet") {
		t.Error("unfiltered empty state text")
	}
	adminMustNotHave(t, doc, tid("admin-tenants-clear"))
}

func adminTenantSample(role string) AdminTenantView {
	return AdminTenantView{
		Page:      adminTestPage(role, "admin-tenants"),
		ID:        "7",
		Name:      "Acme Ltd",
		Status:    "active",
		CreatedAt: adminTestTime,
		Members: []AdminTenantMemberRow{
			{Email: "owner@acme.example", Role: "owner", CreatedAt: adminTestTime},
			{Email: "dev@acme.example", Role: "member", CreatedAt: adminTestTime},
		},
		Quota: adminQuotaSample(true),
		VMs: []AdminTenantVMRow{
			{ID: "42", Name: "web-1", State: "running", Plan: "s-2vcpu-4gb", CreatedAt: adminTestTime},
		},
	}
}

func TestAdminTenantDetailRoles(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			doc := adminRender(t, AdminTenant(adminTenantSample(role)))
			actions := adminCheckPostForms(t, doc)
			switch role {
			case "auditor":
				if len(actions) != 0 {
					t.Fatalf("auditor sees forms %v", actions)
				}
				adminMustNotHave(t, doc, "main button")
				adminMustNotHave(t, doc, "main input:not([type=hidden])")
				if n := doc.Find(tid("quota-bar")).Length(); n != 6 {
					t.Errorf("auditor quota bars = %d, want 6", n)
				}
				if got := doc.Find(tid("quota-limit-memory_mib")).Text(); got != "8 GiB" {
					t.Errorf("memory limit %q", got)
				}
			default:
				adminSameNames(t, "actions", actions, "/admin/tenants/7/suspend", "/admin/tenants/7/quota", "/admin/tenants/7/payments", "/admin/tenants/7/credit-limit")
				qf := adminMustHave(t, doc, tid("admin-tenant-quota-form"))
				adminSameNames(t, "quota form", adminInputNames(qf), adminQuotaNames...)
				if got := qf.Find(tid("quota-input-memory_mib")).AttrOr("value", ""); got != "8192" {
					t.Errorf("memory limit input %q", got)
				}
				if got := qf.Find(tid("quota-used-memory_mib")).Text(); !strings.Contains(got, "6 GiB / 8 GiB") {
					t.Errorf("memory usage beside input %q", got)
				}
				if got := qf.Find(tid("quota-used-disk_gib")).Text(); !strings.Contains(got, "120 GiB / 200 GiB") {
					t.Errorf("disk usage beside input %q", got)
				}
				if got := qf.Find(tid("quota-used-instances")).Text(); !strings.Contains(got, "3 / 5") {
					t.Errorf("instances usage %q", got)
				}
				sf := adminMustHave(t, doc, tid("admin-tenant-suspend-form"))
				adminSameNames(t, "suspend form", adminInputNames(sf), "reason")
				adminMustNotHave(t, doc, tid("admin-tenant-unsuspend-form"))
			}
			if n := doc.Find(tid("admin-tenant-member-row")).Length(); n != 2 {
				t.Errorf("member rows = %d", n)
			}
			vm := adminMustHave(t, doc, tid("admin-tenant-vm-row"))
			if vm.Find(tid("state-badge")).AttrOr("data-state", "") != "running" {
				t.Error("vm state badge")
			}
			if got := doc.Find(tid("tenant-status")).AttrOr("data-status", ""); got != "active" {
				t.Errorf("status %q", got)
			}
		})
	}
}

func TestAdminTenantSuspended(t *testing.T) {
	v := adminTenantSample("operator")
	v.Status = "suspended"
	v.SuspendReason = "unpaid invoice"
	doc := adminRender(t, AdminTenant(v))
	if got := doc.Find(tid("admin-tenant-suspend-reason")).Text(); got != "unpaid invoice" {
		t.Errorf("reason %q", got)
	}
	adminMustNotHave(t, doc, tid("admin-tenant-suspend-form"))
	uf := adminMustHave(t, doc, tid("admin-tenant-unsuspend-form"))
	if uf.AttrOr("action", "") != "/admin/tenants/7/unsuspend" {
		t.Errorf("unsuspend action %q", uf.AttrOr("action", ""))
	}
	adminCheckPostForms(t, doc)

	v.Page = adminTestPage("auditor", "admin-tenants")
	doc = adminRender(t, AdminTenant(v))
	adminMustNotHave(t, doc, tid("admin-tenant-unsuspend-form"))
	if doc.Find(tid("admin-tenant-suspend-reason")).Text() != "unpaid invoice" {
		t.Error("auditor should see the reason")
	}
}

func TestAdminTenantErrorsRedisplay(t *testing.T) {
	v := adminTenantSample("operator")
	v.Quota[1].Value = "lots"
	v.Reason = "abuse"
	v.Errors = FormErrors{"vcpus": "must be a whole number", "reason": "too short", "": "Nothing saved."}
	doc := adminRender(t, AdminTenant(v))
	in := doc.Find(tid("quota-input-vcpus"))
	if in.AttrOr("value", "") != "lots" || in.AttrOr("aria-invalid", "") != "true" {
		t.Errorf("vcpus input value=%q aria-invalid=%q", in.AttrOr("value", ""), in.AttrOr("aria-invalid", ""))
	}
	if got := doc.Find(tid("error-vcpus")).Text(); got != "must be a whole number" {
		t.Errorf("vcpus error %q", got)
	}
	if got := doc.Find(tid("admin-tenant-suspend-reason-input")).AttrOr("value", ""); got != "abuse" {
		t.Errorf("reason value %q", got)
	}
	adminMustHave(t, doc, tid("error-reason"))
	adminMustHave(t, doc, tid("form-error"))
	if doc.Find(tid("quota-input-instances")).AttrOr("aria-invalid", "") != "" {
		t.Error("valid field marked invalid")
	}
}

func TestAdminTenantEmptyLists(t *testing.T) {
	v := adminTenantSample("admin")
	v.Members, v.VMs = nil, nil
	doc := adminRender(t, AdminTenant(v))
	adminMustHave(t, doc, tid("admin-tenant-members-empty")+" "+tid("empty-state"))
	adminMustHave(t, doc, tid("admin-tenant-vms-empty")+" "+tid("empty-state"))
}

// --- default quotas ------------------------------------------------------

func TestAdminQuotas(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			v := AdminQuotasView{Page: adminTestPage(role, "admin-quotas"), Fields: adminQuotaSample(false)}
			doc := adminRender(t, AdminQuotas(v))
			actions := adminCheckPostForms(t, doc)
			if role == "admin" {
				adminSameNames(t, "actions", actions, "/admin/quotas")
				f := adminMustHave(t, doc, tid("admin-quotas-form"))
				adminSameNames(t, "quota form", adminInputNames(f), adminQuotaNames...)
				adminMustNotHave(t, doc, `[data-testid^="quota-used-"]`)
			} else {
				if len(actions) != 0 {
					t.Fatalf("%s sees forms %v", role, actions)
				}
				adminMustHave(t, doc, tid("quota-table"))
				adminMustHave(t, doc, tid("admin-readonly-note"))
				if got := doc.Find(tid("quota-limit-disk_gib")).Text(); got != "200 GiB" {
					t.Errorf("disk limit %q", got)
				}
			}
		})
	}
}

func TestAdminQuotasErrors(t *testing.T) {
	v := AdminQuotasView{Page: adminTestPage("admin", "admin-quotas"), Fields: adminQuotaSample(false)}
	v.Fields[0].Value = "-1"
	v.Errors = FormErrors{"instances": "must be 0 or more"}
	doc := adminRender(t, AdminQuotas(v))
	if got := doc.Find(tid("quota-input-instances")).AttrOr("value", ""); got != "-1" {
		t.Errorf("value %q", got)
	}
	adminMustHave(t, doc, tid("error-instances"))
}

// --- users ---------------------------------------------------------------

func adminUsersSample(role string) AdminUsersView {
	return AdminUsersView{
		Page:  adminTestPage(role, "admin-users"),
		Query: "example",
		Users: []AdminUserRow{
			{ID: "1", Email: "root@fibrix.example", Role: "admin", CreatedAt: adminTestTime, LastLoginAt: adminTestTime},
			{ID: "2", Email: "owner@acme.example", Tenant: "Acme Ltd", Role: "owner", CreatedAt: adminTestTime},
		},
		Pager: Pager{Page: 1, PerPage: 20, Total: 2, Path: "/admin/users"},
	}
}

func TestAdminUsers(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			doc := adminRender(t, AdminUsers(adminUsersSample(role)))
			actions := adminCheckPostForms(t, doc)
			if role == "admin" {
				// Admins make reset links for anyone and set the staff sign-in rule.
				adminSameNames(t, "actions", actions, "/admin/users/1/password-reset", "/admin/users/2/password-reset",
					"/admin/users/two-factor", "/admin/users")
				f := adminMustHave(t, doc, tid("admin-user-create-form"))
				adminSameNames(t, "create form", adminInputNames(f), "email", "password", "role")
				var opts []string
				f.Find(`select[name="role"] option`).Each(func(_ int, o *goquery.Selection) {
					opts = append(opts, o.AttrOr("value", ""))
				})
				adminSameNames(t, "role options", opts, "admin", "operator", "auditor")
			} else if role == "operator" {
				// Operators make reset links for customers only.
				adminSameNames(t, "actions", actions, "/admin/users/2/password-reset")
				adminMustNotHave(t, doc, tid("admin-user-create-form"))
				adminMustNotHave(t, doc, tid("staff-two-factor-form"))
			} else {
				if len(actions) != 0 {
					t.Fatalf("%s sees forms %v", role, actions)
				}
				adminMustNotHave(t, doc, tid("admin-user-create-form"))
			}
			if got := doc.Find(tid("admin-users-q")).AttrOr("value", ""); got != "example" {
				t.Errorf("q value %q", got)
			}
			rows := doc.Find(tid("admin-user-row"))
			if rows.Length() != 2 {
				t.Fatalf("rows = %d", rows.Length())
			}
			if got := strings.TrimSpace(rows.Eq(0).Find(tid("admin-user-tenant")).Text()); got != "staff" {
				t.Errorf("staff tenant %q", got)
			}
			if got := strings.TrimSpace(rows.Eq(1).Find(tid("admin-user-tenant")).Text()); got != "Acme Ltd" {
				t.Errorf("tenant %q", got)
			}
			if got := strings.TrimSpace(rows.Eq(1).Find(tid("admin-user-last-login")).Text()); got != "never" {
				t.Errorf("last login %q", got)
			}
			if got := strings.TrimSpace(rows.Eq(0).Find(tid("admin-user-last-login")).Text()); got != "2026-03-14 09:26 UTC" {
				t.Errorf("last login %q", got)
			}
		})
	}
}

func TestAdminUsersFormRedisplay(t *testing.T) {
	v := adminUsersSample("admin")
	v.Users = nil
	v.Form = AdminUserForm{Email: "new@fibrix.example", Role: "operator"}
	v.Errors = FormErrors{"password": "at least 12 characters", "": "Could not create the user."}
	doc := adminRender(t, AdminUsers(v))
	f := doc.Find(tid("admin-user-create-form"))
	if got := f.Find(`input[name="email"]`).AttrOr("value", ""); got != "new@fibrix.example" {
		t.Errorf("email %q", got)
	}
	if _, ok := f.Find(`input[name="password"]`).Attr("value"); ok {
		t.Error("password must not be redisplayed")
	}
	if got := f.Find(`select[name="role"] option[selected]`).AttrOr("value", ""); got != "operator" {
		t.Errorf("selected role %q", got)
	}
	adminMustHave(t, doc, tid("error-password"))
	adminMustHave(t, doc, tid("admin-user-create-form")+" "+tid("form-error"))
	adminMustHave(t, doc, tid("admin-users-empty"))
}

// --- plans ---------------------------------------------------------------

func adminPlansSample(role string) AdminPlansView {
	return AdminPlansView{
		Page: adminTestPage(role, "admin-plans"),
		Plans: []AdminPlanRow{
			{ID: "1", Name: "s-1vcpu-1gb", VCPUs: 1, MemoryMiB: 1024, DiskGiB: 25, Enabled: true, VMCount: 12},
			{ID: "2", Name: "s-2vcpu-1.5gb", VCPUs: 2, MemoryMiB: 1536, DiskGiB: 50, Enabled: false},
		},
	}
}

func TestAdminPlans(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			doc := adminRender(t, AdminPlans(adminPlansSample(role)))
			actions := adminCheckPostForms(t, doc)
			if role == "admin" {
				adminSameNames(t, "actions", actions, "/admin/plans")
				f := adminMustHave(t, doc, tid("admin-plan-create-form"))
				adminSameNames(t, "create form", adminInputNames(f), "name", "vcpus", "memory_mib", "disk_gib")
				adminMustHave(t, doc, tid("admin-plan-edit-link"))
			} else {
				if len(actions) != 0 {
					t.Fatalf("%s sees forms %v", role, actions)
				}
				adminMustNotHave(t, doc, tid("admin-plan-create-form"))
				adminMustNotHave(t, doc, tid("admin-plan-edit-link"))
			}
			rows := doc.Find(tid("admin-plan-row"))
			if rows.Length() != 2 {
				t.Fatalf("rows = %d", rows.Length())
			}
			r0, r1 := rows.Eq(0), rows.Eq(1)
			if got := r0.Find(tid("admin-plan-memory")).Text(); got != "1 GiB" {
				t.Errorf("memory %q", got)
			}
			if got := r1.Find(tid("admin-plan-memory")).Text(); got != "1.5 GiB" {
				t.Errorf("memory %q", got)
			}
			if got := r0.Find(tid("admin-plan-disk")).Text(); got != "25 GiB" {
				t.Errorf("disk %q", got)
			}
			if got := r0.Find(tid("admin-plan-vms")).Text(); got != "12" {
				t.Errorf("vms %q", got)
			}
			if r0.Find(tid("enabled-badge")).AttrOr("data-enabled", "") != "true" ||
				r1.Find(tid("enabled-badge")).AttrOr("data-enabled", "") != "false" {
				t.Error("enabled badges")
			}
			if got := r0.Find(tid("admin-plan-link")).AttrOr("href", ""); got != "/admin/plans/1" {
				t.Errorf("plan link %q", got)
			}
		})
	}
}

func TestAdminPlansFormRedisplayAndEmpty(t *testing.T) {
	v := adminPlansSample("admin")
	v.Plans = nil
	v.Form = AdminPlanForm{Name: "big", VCPUs: "x", MemoryMiB: "8192", DiskGiB: "160"}
	v.Errors = FormErrors{"vcpus": "must be a number"}
	doc := adminRender(t, AdminPlans(v))
	adminMustHave(t, doc, tid("admin-plans-empty")+" "+tid("empty-state"))
	f := doc.Find(tid("admin-plan-create-form"))
	for name, want := range map[string]string{"name": "big", "vcpus": "x", "memory_mib": "8192", "disk_gib": "160"} {
		if got := f.Find(`input[name="`+name+`"]`).AttrOr("value", ""); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if f.Find(`input[name="vcpus"]`).AttrOr("aria-invalid", "") != "true" {
		t.Error("vcpus not marked invalid")
	}
	if got := f.Find(tid("error-vcpus")).Text(); got != "must be a number" {
		t.Errorf("error %q", got)
	}
}

func TestAdminPlanEdit(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			v := AdminPlanEditView{
				Page: adminTestPage(role, "admin-plans"), ID: "3", Name: "s-4vcpu-8gb", VMCount: 2,
				Form: AdminPlanForm{Name: "s-4vcpu-8gb", VCPUs: "4", MemoryMiB: "8192", DiskGiB: "160", Enabled: true},
			}
			doc := adminRender(t, AdminPlanEdit(v))
			actions := adminCheckPostForms(t, doc)
			if role != "admin" {
				if len(actions) != 0 {
					t.Fatalf("%s sees forms %v", role, actions)
				}
				adminMustHave(t, doc, tid("admin-plan-details"))
				return
			}
			adminSameNames(t, "actions", actions, "/admin/plans/3")
			f := adminMustHave(t, doc, tid("admin-plan-edit-form"))
			adminSameNames(t, "edit form", adminInputNames(f), "name", "vcpus", "memory_mib", "disk_gib", "enabled")
			cb := f.Find(`input[type="checkbox"][name="enabled"]`)
			if _, ok := cb.Attr("checked"); !ok {
				t.Error("enabled checkbox not checked")
			}
			if got := f.Find(`input[name="memory_mib"]`).AttrOr("value", ""); got != "8192" {
				t.Errorf("memory %q", got)
			}

			v.Form.Enabled = false
			doc = adminRender(t, AdminPlanEdit(v))
			if _, ok := doc.Find(`input[name="enabled"]`).Attr("checked"); ok {
				t.Error("enabled checkbox checked for a disabled plan")
			}
		})
	}
}

// --- images --------------------------------------------------------------

const adminTestChecksum = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func adminImagesSample(role string) AdminImagesView {
	return AdminImagesView{
		Page: adminTestPage(role, "admin-images"),
		Images: []AdminImageRow{
			{ID: "4", Name: "Debian 12", OS: "debian", Version: "12", SourceURL: "https://cloud.debian.org/d12.qcow2", Checksum: adminTestChecksum, Enabled: true},
		},
	}
}

func TestAdminImages(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			doc := adminRender(t, AdminImages(adminImagesSample(role)))
			actions := adminCheckPostForms(t, doc)
			if role == "admin" {
				adminSameNames(t, "actions", actions, "/admin/images")
				f := adminMustHave(t, doc, tid("admin-image-create-form"))
				adminSameNames(t, "create form", adminInputNames(f), "name", "os", "version", "kind", "source_url", "checksum")
			} else {
				if len(actions) != 0 {
					t.Fatalf("%s sees forms %v", role, actions)
				}
				adminMustNotHave(t, doc, tid("admin-image-create-form"))
			}
			row := adminMustHave(t, doc, tid("admin-image-row"))
			if got := row.Find(tid("admin-image-checksum")+" code").AttrOr("title", ""); got != adminTestChecksum {
				t.Errorf("checksum title %q", got)
			}
			if got := row.Find(tid("admin-image-source")).Text(); got != "https://cloud.debian.org/d12.qcow2" {
				t.Errorf("source %q", got)
			}
			if got := row.Find(tid("admin-image-link")).AttrOr("href", ""); got != "/admin/images/4" {
				t.Errorf("link %q", got)
			}
		})
	}
}

func TestAdminImagesFormRedisplayAndEmpty(t *testing.T) {
	v := adminImagesSample("admin")
	v.Images = nil
	v.Form = AdminImageForm{Name: "Alma 9", OS: "alma", Version: "9", SourceURL: "ftp://x", Checksum: "md5:1"}
	v.Errors = FormErrors{"source_url": "must be http(s)", "checksum": "must be sha256:…"}
	doc := adminRender(t, AdminImages(v))
	adminMustHave(t, doc, tid("admin-images-empty"))
	f := doc.Find(tid("admin-image-create-form"))
	for name, want := range map[string]string{"name": "Alma 9", "os": "alma", "version": "9", "source_url": "ftp://x", "checksum": "md5:1"} {
		if got := f.Find(`input[name="`+name+`"]`).AttrOr("value", ""); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	adminMustHave(t, doc, tid("error-source_url"))
	adminMustHave(t, doc, tid("error-checksum"))
}

func TestAdminImageEdit(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			v := AdminImageEditView{
				Page: adminTestPage(role, "admin-images"), ID: "4", Name: "Debian 12",
				Form:   AdminImageForm{Name: "Debian 12", OS: "debian", Version: "12", SourceURL: "https://x/d.qcow2", Checksum: adminTestChecksum},
				Errors: FormErrors{"name": "taken"},
			}
			doc := adminRender(t, AdminImageEdit(v))
			actions := adminCheckPostForms(t, doc)
			if role != "admin" {
				if len(actions) != 0 {
					t.Fatalf("%s sees forms %v", role, actions)
				}
				adminMustHave(t, doc, tid("admin-image-details"))
				return
			}
			adminSameNames(t, "actions", actions, "/admin/images/4")
			f := adminMustHave(t, doc, tid("admin-image-edit-form"))
			adminSameNames(t, "edit form", adminInputNames(f), "name", "os", "version", "kind", "source_url", "checksum", "enabled")
			if _, ok := f.Find(`input[name="enabled"]`).Attr("checked"); ok {
				t.Error("disabled image shown as enabled")
			}
			adminMustHave(t, doc, tid("error-name"))
		})
	}
}

// --- VMs -----------------------------------------------------------------

func TestAdminVMs(t *testing.T) {
	v := AdminVMsView{
		Page:   adminTestPage("auditor", "admin-vms"),
		Tenant: "acme",
		State:  "stopped",
		States: []string{"running", "stopped", "error"},
		VMs: []AdminVMRow{
			{ID: "42", Name: "web-1", TenantID: "7", TenantName: "Acme Ltd", State: "stopped", Plan: "s-1vcpu-1gb", Image: "Debian 12", CreatedAt: adminTestTime},
		},
		Pager: Pager{Page: 2, PerPage: 1, Total: 3, Path: "/admin/vms", Query: url.Values{"tenant": {"acme"}, "state": {"stopped"}}},
	}
	doc := adminRender(t, AdminVMs(v))
	if n := adminPostForms(doc).Length(); n != 0 {
		t.Errorf("POST forms = %d", n)
	}
	filters := adminMustHave(t, doc, tid("admin-vms-filters"))
	if filters.AttrOr("action", "") != "/admin/vms" || filters.AttrOr("method", "") != "get" {
		t.Error("filter form action/method")
	}
	if got := doc.Find(tid("admin-vms-filter-tenant")).AttrOr("value", ""); got != "acme" {
		t.Errorf("tenant filter %q", got)
	}
	sel := doc.Find(tid("admin-vms-filter-state") + " option[selected]")
	if sel.Length() != 1 || sel.AttrOr("value", "") != "stopped" {
		t.Errorf("state filter selected %d %q", sel.Length(), sel.AttrOr("value", ""))
	}
	row := adminMustHave(t, doc, tid("admin-vm-row"))
	if got := row.Find(tid("admin-vm-tenant-link")).AttrOr("href", ""); got != "/admin/tenants/7" {
		t.Errorf("tenant link %q", got)
	}
	if row.Find(tid("state-badge")).AttrOr("data-state", "") != "stopped" {
		t.Error("state badge")
	}
	prev := adminMustHave(t, doc, tid("pager-prev")).AttrOr("href", "")
	if !strings.Contains(prev, "state=stopped") || !strings.Contains(prev, "tenant=acme") {
		t.Errorf("prev link %q loses filters", prev)
	}

	// An unknown state in the URL is still shown as selected.
	v.State = "rebuilding"
	doc = adminRender(t, AdminVMs(v))
	if got := doc.Find(tid("admin-vms-filter-state")+" option[selected]").AttrOr("value", ""); got != "rebuilding" {
		t.Errorf("unknown state selected %q", got)
	}

	v.VMs, v.Tenant, v.State = nil, "", ""
	doc = adminRender(t, AdminVMs(v))
	adminMustHave(t, doc, tid("admin-vms-empty")+" "+tid("empty-state"))
	if got := doc.Find(tid("admin-vms-filter-state")+" option[selected]").AttrOr("value", "x"); got != "" {
		t.Errorf("empty state filter selects %q", got)
	}
	adminMustNotHave(t, doc, tid("admin-vms-filter-clear"))
}

// --- audit ---------------------------------------------------------------

func adminAuditSample() AdminAuditView {
	return AdminAuditView{
		Page:   adminTestPage("auditor", "admin-audit"),
		Tenant: "acme",
		Actor:  "owner@acme.example",
		Action: "vm.create",
		Result: "failure",
		Entries: []AdminAuditRow{
			{Time: adminTestTime, Actor: "owner@acme.example", Tenant: "Acme Ltd", Action: "vm.create", Target: "vm web-1",
				SourceIP: "203.0.113.7", Result: "failure", Detail: "quota exceeded: instances"},
			{Time: adminTestTime, Actor: "root@fibrix.example", Action: "plan.update", Target: "plan 3", SourceIP: "198.51.100.1", Result: "success"},
		},
		Pager: Pager{Page: 1, PerPage: 50, Total: 2, Path: "/admin/audit"},
	}
}

func TestAdminAudit(t *testing.T) {
	doc := adminRender(t, AdminAudit(adminAuditSample()))
	if n := adminPostForms(doc).Length(); n != 0 {
		t.Errorf("POST forms = %d", n)
	}
	for id, want := range map[string]string{
		"admin-audit-filter-tenant": "acme",
		"admin-audit-filter-actor":  "owner@acme.example",
		"admin-audit-filter-action": "vm.create",
	} {
		if got := doc.Find(tid(id)).AttrOr("value", ""); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	f := doc.Find(tid("admin-audit-filters"))
	adminSameNames(t, "filters", adminInputNames(f), "tenant", "actor", "action", "result")
	var opts []string
	f.Find(`select[name="result"] option`).Each(func(_ int, o *goquery.Selection) { opts = append(opts, o.Text()) })
	adminSameNames(t, "result options", opts, "any", "success", "failure")
	sel := f.Find(`select[name="result"] option[selected]`)
	if sel.Length() != 1 || sel.AttrOr("value", "") != "failure" {
		t.Errorf("result selected %q", sel.AttrOr("value", ""))
	}
	rows := doc.Find(tid("admin-audit-row"))
	if rows.Length() != 2 {
		t.Fatalf("rows = %d", rows.Length())
	}
	r0 := rows.Eq(0)
	for id, want := range map[string]string{
		"admin-audit-actor":  "owner@acme.example",
		"admin-audit-tenant": "Acme Ltd",
		"admin-audit-action": "vm.create",
		"admin-audit-target": "vm web-1",
		"admin-audit-ip":     "203.0.113.7",
		"admin-audit-result": "failure",
		"admin-audit-detail": "quota exceeded: instances",
	} {
		if got := strings.TrimSpace(r0.Find(tid(id)).Text()); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if !strings.Contains(r0.Text(), "2026-03-14 09:26 UTC") {
		t.Error("time missing")
	}
	if got := strings.TrimSpace(rows.Eq(1).Find(tid("admin-audit-tenant")).Text()); got != "—" {
		t.Errorf("platform entry tenant %q", got)
	}
	adminMustHave(t, doc, tid("pagination"))
	adminMustNotHave(t, doc, tid("admin-audit-empty"))
}

func TestAdminAuditEmpty(t *testing.T) {
	v := adminAuditSample()
	v.Entries = nil
	v.Pager = Pager{Page: 1, PerPage: 50, Path: "/admin/audit"}
	doc := adminRender(t, AdminAudit(v))
	if !strings.Contains(adminMustHave(t, doc, tid("admin-audit-empty")).Text(), "No entries found") {
		t.Error("filtered empty state")
	}
	adminMustHave(t, doc, tid("admin-audit-filter-clear"))

	v.Tenant, v.Actor, v.Action, v.Result = "", "", "", "any"
	doc = adminRender(t, AdminAudit(v))
	if !strings.Contains(doc.Find(tid("admin-audit-empty")).Text(), "No audit entries") {
		t.Error("unfiltered empty state")
	}
	if got := doc.Find(`select[name="result"] option[selected]`).Text(); got != "any" {
		t.Errorf("result %q", got)
	}
	adminMustNotHave(t, doc, tid("admin-audit-filter-clear"))
	adminMustNotHave(t, doc, tid("admin-audit-table"))
}

// --- all pages -----------------------------------------------------------

// TestAdminAuditorSeesNoForms renders every staff page as an auditor.
func TestAdminAuditorSeesNoForms(t *testing.T) {
	p := adminTestPage("auditor", "")
	pages := map[string]templ.Component{
		"tenants":   AdminTenants(AdminTenantsView{Page: p}),
		"tenant":    AdminTenant(AdminTenantView{Page: p, ID: "1", Status: "active", Quota: adminQuotaSample(true)}),
		"suspended": AdminTenant(AdminTenantView{Page: p, ID: "1", Status: "suspended", Quota: adminQuotaSample(true)}),
		"quotas":    AdminQuotas(AdminQuotasView{Page: p, Fields: adminQuotaSample(false)}),
		"users":     AdminUsers(AdminUsersView{Page: p}),
		"plans":     AdminPlans(adminPlansSample("auditor")),
		"plan":      AdminPlanEdit(AdminPlanEditView{Page: p, ID: "1"}),
		"images":    AdminImages(adminImagesSample("auditor")),
		"image":     AdminImageEdit(AdminImageEditView{Page: p, ID: "1"}),
		"vms":       AdminVMs(AdminVMsView{Page: p}),
		"audit":     AdminAudit(AdminAuditView{Page: p}),
	}
	for name, c := range pages {
		t.Run(name, func(t *testing.T) {
			doc := adminRender(t, c)
			if n := adminPostForms(doc).Length(); n != 0 {
				t.Errorf("%d POST forms", n)
			}
			// The only inputs an auditor gets are search/filter boxes in GET forms.
			doc.Find("main input, main select, main textarea, main button").Each(func(_ int, s *goquery.Selection) {
				if f := s.Closest("form"); f.Length() == 0 || !strings.EqualFold(f.AttrOr("method", ""), "get") {
					t.Errorf("control %s outside a GET form", goquery.NodeName(s))
				}
			})
			adminMustHave(t, doc, tid("admin-page-title"))
			adminMustHave(t, doc, tid("logout-form")) // rendered inside the layout
		})
	}
}
