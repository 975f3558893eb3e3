package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// adminTenantID signs up a tenant through the API and returns its id.
func adminTenantID(t *testing.T, e *env, name, email string) string {
	t.Helper()
	e.customer(name, email)
	u, err := e.st.GetUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.Tenant()
}

// adminOrderVM orders a nano VM for a tenant straight through the store.
func adminOrderVM(t *testing.T, e *env, tenantID, name, image string) (store.VM, error) {
	t.Helper()
	ctx := context.Background()
	a := store.Actor{Email: "owner@test", TenantID: tenantID}
	keys, _, err := e.st.ListSSHKeys(ctx, tenantID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		k, err := e.st.AddSSHKey(ctx, a, tenantID, "laptop", pubKey(t, "laptop"))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return e.st.CreateVM(ctx, a, tenantID, store.VMOrder{Name: name, Plan: "nano", Image: image, SSHKeys: []string{keys[0].ID}})
}

func adminTestIDs(doc *goquery.Document, testid string) []string {
	var out []string
	doc.Find(`[data-testid="` + testid + `"]`).Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.TrimSpace(s.Text()))
	})
	return out
}

func adminHas(doc *goquery.Document, testid string) bool {
	return doc.Find(`[data-testid="`+testid+`"]`).Length() > 0
}

func adminQuota(t *testing.T, e *env, tenantID string) store.Quota {
	t.Helper()
	q, _, err := e.st.QuotaUsage(context.Background(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestAdminPagesRenderForEveryStaffRole(t *testing.T) {
	e := newEnv(t)
	tid := adminTenantID(t, e, "Acme", "owner@acme.example")
	im := e.image("debian-12")
	if _, err := adminOrderVM(t, e, tid, "web-1", im.Name); err != nil {
		t.Fatal(err)
	}
	pages := []struct{ name, path, testid string }{
		{"tenants", "/admin/tenants", "admin-tenants-page"},
		{"tenant search", "/admin/tenants?q=acme&page=1", "admin-tenants-page"},
		{"tenant", "/admin/tenants/" + tid, "admin-tenant-page"},
		{"default quota", "/admin/quotas", "admin-quotas-page"},
		{"users", "/admin/users?q=acme", "admin-users-page"},
		{"plans", "/admin/plans", "admin-plans-page"},
		{"plan", "/admin/plans/plan-small", "admin-plan-edit-page"},
		{"images", "/admin/images", "admin-images-page"},
		{"image", "/admin/images/" + im.ID, "admin-image-edit-page"},
		{"vms", "/admin/vms?tenant=acme&state=pending", "admin-vms-page"},
		{"audit", "/admin/audit?actor=owner&action=vm.&result=success", "admin-audit-page"},
	}
	for _, role := range []string{store.RoleAdmin, store.RoleOperator, store.RoleAuditor} {
		b := e.staffBrowser(role)
		t.Run(role, func(t *testing.T) {
			res, _ := b.get("/admin")
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/tenants" {
				t.Errorf("/admin: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
			for _, p := range pages {
				res, doc := b.get(p.path)
				if res.StatusCode != http.StatusOK || !adminHas(doc, p.testid) {
					t.Errorf("%s: status %d, %s present %v", p.name, res.StatusCode, p.testid, adminHas(doc, p.testid))
				}
			}
			// Forms appear only for roles that may use them.
			_, doc := b.get("/admin/tenants/" + tid)
			if got, want := adminHas(doc, "admin-tenant-quota-form"), role != store.RoleAuditor; got != want {
				t.Errorf("tenant quota form shown: %v, want %v", got, want)
			}
			_, doc = b.get("/admin/plans")
			if got, want := adminHas(doc, "admin-plan-create-form"), role == store.RoleAdmin; got != want {
				t.Errorf("plan create form shown: %v, want %v", got, want)
			}
		})
	}
}

func TestAdminTenantPageContents(t *testing.T) {
	e := newEnv(t)
	tid := adminTenantID(t, e, "Acme", "owner@acme.example")
	if _, err := adminOrderVM(t, e, tid, "web-1", e.image("debian-12").Name); err != nil {
		t.Fatal(err)
	}
	b := e.staffBrowser(store.RoleAuditor)
	_, doc := b.get("/admin/tenants/" + tid)
	if got := adminTestIDs(doc, "quota-used-instances"); len(got) != 1 || got[0] != "1" {
		t.Errorf("instances used: %q", got)
	}
	if got := adminTestIDs(doc, "quota-limit-memory_mib"); len(got) != 1 || got[0] != "16 GiB" {
		t.Errorf("memory limit: %q", got)
	}
	if n := doc.Find(`[data-testid="admin-tenant-member-row"]`).Length(); n != 1 {
		t.Errorf("members: %d", n)
	}
	if n := doc.Find(`[data-testid="admin-tenant-vm-row"]`).Length(); n != 1 {
		t.Errorf("vms: %d", n)
	}
	if res, _ := b.get("/admin/tenants/no-such-tenant"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", res.StatusCode)
	}
}

func TestAdminGuards(t *testing.T) {
	e := newEnv(t)
	tid := adminTenantID(t, e, "Acme", "owner@acme.example")
	im := e.image("debian-12")
	tenantPath := "/admin/tenants/" + tid
	posts := []struct {
		name, path string
		form       url.Values
		operator   int // status for an operator; auditors always get 403
	}{
		{"tenant quota", tenantPath + "/quota", url.Values{"instances": {"3"}, "vcpus": {"4"}, "memory_mib": {"4096"}, "disk_gib": {"50"}, "ssh_keys": {"5"}, "port_forwards": {"2"}}, http.StatusSeeOther},
		{"suspend", tenantPath + "/suspend", url.Values{"reason": {"unpaid invoice"}}, http.StatusSeeOther},
		{"unsuspend", tenantPath + "/unsuspend", nil, http.StatusSeeOther},
		{"default quota", "/admin/quotas", url.Values{"instances": {"1"}, "vcpus": {"1"}, "memory_mib": {"1024"}, "disk_gib": {"10"}, "ssh_keys": {"1"}, "port_forwards": {"0"}}, http.StatusForbidden},
		{"create staff", "/admin/users", url.Values{"email": {"new@isp.example"}, "password": {"long enough password"}, "role": {"admin"}}, http.StatusForbidden},
		{"create plan", "/admin/plans", url.Values{"name": {"huge"}, "vcpus": {"8"}, "memory_mib": {"16384"}, "disk_gib": {"100"}}, http.StatusForbidden},
		{"update plan", "/admin/plans/plan-small", url.Values{"name": {"small"}, "vcpus": {"1"}, "memory_mib": {"2048"}, "disk_gib": {"20"}}, http.StatusForbidden},
		{"create image", "/admin/images", url.Values{"name": {"alpine"}, "os": {"Alpine"}, "version": {"3.20"}, "source_url": {"https://x.example/a.qcow2"}, "checksum": {strings.Repeat("cd", 32)}}, http.StatusForbidden},
		{"update image", "/admin/images/" + im.ID, url.Values{"name": {"debian-12"}, "os": {"Debian"}, "version": {"12"}, "source_url": {im.SourceURL}, "checksum": {im.Checksum}}, http.StatusForbidden},
	}
	auditor, operator := e.staffBrowser(store.RoleAuditor), e.staffBrowser(store.RoleOperator)
	customer := e.browser()
	customer.signup("Globex", "boss@globex.example")
	anonymous := e.browser()
	for _, p := range posts {
		// post adds each browser's own CSRF token to the form it is given.
		form := func() url.Values {
			f := url.Values{}
			for k, v := range p.form {
				f[k] = v
			}
			return f
		}
		t.Run(p.name, func(t *testing.T) {
			if res, _ := auditor.post(p.path, form()); res.StatusCode != http.StatusForbidden {
				t.Errorf("auditor: %d, want 403", res.StatusCode)
			}
			if res, _ := customer.post(p.path, form()); res.StatusCode != http.StatusNotFound {
				t.Errorf("customer: %d, want 404", res.StatusCode)
			}
			if res, _ := anonymous.post(p.path, form()); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("anonymous: %d, want 401", res.StatusCode)
			}
			if res, _ := operator.post(p.path, form()); res.StatusCode != p.operator {
				t.Errorf("operator: %d, want %d", res.StatusCode, p.operator)
			}
		})
	}
	// The refused changes left everything as it was.
	ctx := context.Background()
	if q, _ := e.st.DefaultQuota(ctx); q.Instances != 5 {
		t.Errorf("default quota changed: %+v", q)
	}
	if _, err := e.st.GetUserByEmail(ctx, "new@isp.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("staff user created: %v", err)
	}
	if _, err := e.st.GetPlan(ctx, "huge"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("plan created: %v", err)
	}
	if _, err := e.st.GetImage(ctx, "alpine"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("image created: %v", err)
	}
	// The operator's allowed changes took effect.
	if q := adminQuota(t, e, tid); q.Instances != 3 || q.MemoryMiB != 4096 {
		t.Errorf("operator quota not saved: %+v", q)
	}

	for _, path := range []string{"/admin", "/admin/tenants", tenantPath, "/admin/audit"} {
		if res, _ := customer.get(path); res.StatusCode != http.StatusNotFound {
			t.Errorf("customer GET %s: %d, want 404", path, res.StatusCode)
		}
		res, _ := anonymous.get(path)
		if loc := res.Header.Get("Location"); res.StatusCode/100 != 3 || !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("anonymous GET %s: %d %s, want redirect to /login", path, res.StatusCode, loc)
		}
	}
}

func TestAdminTenantSearch(t *testing.T) {
	e := newEnv(t)
	acme := adminTenantID(t, e, "Acme Corp", "owner@acme.example")
	globex := adminTenantID(t, e, "Globex", "boss@globex.example")
	b := e.staffBrowser(store.RoleAuditor)
	for _, tc := range []struct {
		name, q string
		want    []string
	}{
		{"everything", "", []string{globex, acme}},
		{"by name", "acme", []string{acme}},
		{"by name, case", "GLOBEX", []string{globex}},
		{"by member email", "boss@", []string{globex}},
		{"no match", "initech", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := b.get("/admin/tenants?q=" + url.QueryEscape(tc.q))
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			var got []string
			doc.Find(`[data-testid="admin-tenant-row"]`).Each(func(_ int, s *goquery.Selection) {
				got = append(got, s.AttrOr("data-id", ""))
			})
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if len(tc.want) == 0 && !adminHas(doc, "admin-tenants-empty") {
				t.Error("no empty state")
			}
		})
	}
	_, doc := b.get("/admin/tenants?q=acme")
	if got := adminTestIDs(doc, "admin-tenant-owner"); len(got) != 1 || got[0] != "owner@acme.example" {
		t.Errorf("owner column: %q", got)
	}
}

func TestAdminTenantQuota(t *testing.T) {
	e := newEnv(t)
	tid := adminTenantID(t, e, "Acme", "owner@acme.example")
	path := "/admin/tenants/" + tid + "/quota"
	valid := func(field, value string) url.Values {
		f := url.Values{"instances": {"3"}, "vcpus": {"6"}, "memory_mib": {"8192"}, "disk_gib": {"100"}, "ssh_keys": {"4"}, "port_forwards": {"2"}}
		f.Set(field, value)
		return f
	}
	before := adminQuota(t, e, tid)
	b := e.staffBrowser(store.RoleAdmin)
	for _, tc := range []struct{ name, field, value string }{
		{"not a number", "vcpus", "lots"},
		{"fraction", "disk_gib", "1.5"},
		{"empty", "ssh_keys", ""},
		{"negative", "memory_mib", "-1"},
		{"too large", "instances", "99999999999999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := b.post(path, valid(tc.field, tc.value))
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422", res.StatusCode)
			}
			if !adminHas(doc, "error-"+tc.field) {
				t.Errorf("no inline error for %s", tc.field)
			}
			if tc.value != "" {
				if got := doc.Find(`[data-testid="quota-input-`+tc.field+`"]`).AttrOr("value", ""); got != tc.value {
					t.Errorf("input shows %q, want %q", got, tc.value)
				}
			}
			if q := adminQuota(t, e, tid); q != before {
				t.Errorf("quota changed: %+v", q)
			}
		})
	}
	res, _ := b.post(path, valid("vcpus", "12"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/tenants/"+tid {
		t.Fatalf("save: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	want := store.Quota{Instances: 3, VCPUs: 12, MemoryMiB: 8192, DiskGiB: 100, SSHKeys: 4, PortForwards: 2, Snapshots: 5, SnapshotGiB: 50} // snapshot limits left out of the form are kept
	if q := adminQuota(t, e, tid); q != want {
		t.Errorf("quota %+v, want %+v", q, want)
	}
	_, doc := b.get("/admin/tenants/" + tid)
	if !strings.Contains(doc.Text(), "Quota of Acme saved.") {
		t.Error("no flash after save")
	}
	form := valid("vcpus", "12")
	form.Set("snapshots", "7")
	form.Set("snapshot_gib", "70")
	if res, _ := b.post(path, form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save with snapshot limits: %d", res.StatusCode)
	}
	want.Snapshots, want.SnapshotGiB = 7, 70
	if q := adminQuota(t, e, tid); q != want {
		t.Errorf("quota %+v, want %+v", q, want)
	}
	form.Set("snapshots", "-1")
	if res, _ := b.post(path, form); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("negative snapshot limit: %d", res.StatusCode)
	}
	if res, _ := b.post("/admin/tenants/no-such-tenant/quota", valid("vcpus", "1")); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", res.StatusCode)
	}
}

func TestAdminDefaultQuota(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before, _ := e.st.DefaultQuota(ctx)
	b := e.staffBrowser(store.RoleAdmin)
	form := url.Values{"instances": {"2"}, "vcpus": {"2"}, "memory_mib": {"2048"}, "disk_gib": {"20"}, "ssh_keys": {"3"}, "port_forwards": {"1"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("disk_gib", "twenty")
	res, doc := b.post("/admin/quotas", bad)
	if res.StatusCode != http.StatusUnprocessableEntity || !adminHas(doc, "error-disk_gib") {
		t.Errorf("non-number: %d", res.StatusCode)
	}
	if q, _ := e.st.DefaultQuota(ctx); q != before {
		t.Errorf("default quota changed: %+v", q)
	}
	if res, _ := b.post("/admin/quotas", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	want := store.Quota{Instances: 2, VCPUs: 2, MemoryMiB: 2048, DiskGiB: 20, SSHKeys: 3, PortForwards: 1, Snapshots: 5, SnapshotGiB: 50}
	if q, _ := e.st.DefaultQuota(ctx); q != want {
		t.Errorf("default quota %+v, want %+v", q, want)
	}
	// New tenants start with it; existing ones keep theirs.
	tid := adminTenantID(t, e, "Newco", "a@newco.example")
	if q := adminQuota(t, e, tid); q != want {
		t.Errorf("new tenant quota %+v", q)
	}
}

func TestAdminSuspend(t *testing.T) {
	e := newEnv(t)
	tid := adminTenantID(t, e, "Acme", "owner@acme.example")
	im := e.image("debian-12")
	b := e.staffBrowser(store.RoleOperator)
	base := "/admin/tenants/" + tid
	ctx := context.Background()
	// The key exists before the suspension, which also blocks adding keys.
	if _, err := e.st.AddSSHKey(ctx, store.Actor{Email: "owner@acme.example"}, tid, "laptop", pubKey(t, "laptop")); err != nil {
		t.Fatal(err)
	}

	res, doc := b.post(base+"/suspend", url.Values{"reason": {"   "}})
	if res.StatusCode != http.StatusUnprocessableEntity || !adminHas(doc, "error-reason") {
		t.Errorf("blank reason: %d", res.StatusCode)
	}
	if ten, _ := e.st.GetTenant(ctx, tid); ten.Status != store.TenantActive {
		t.Fatalf("suspended without a reason")
	}

	res, _ = b.post(base+"/suspend", url.Values{"reason": {"unpaid invoice #7"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != base {
		t.Fatalf("suspend: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	_, doc = b.get(base)
	if got := adminTestIDs(doc, "admin-tenant-suspend-reason"); len(got) != 1 || got[0] != "unpaid invoice #7" {
		t.Errorf("reason shown: %q", got)
	}
	_, err := adminOrderVM(t, e, tid, "web-1", im.Name)
	if se, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrSuspended) || !strings.Contains(se.Message, "unpaid invoice #7") {
		t.Errorf("order while suspended: %v", err)
	}

	res, doc = b.post(base+"/suspend", url.Values{"reason": {"again"}})
	if res.StatusCode != http.StatusConflict || !adminHas(doc, "form-error") {
		t.Errorf("suspend twice: %d", res.StatusCode)
	}
	if res, _ := b.post(base+"/unsuspend", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("unsuspend: %d", res.StatusCode)
	}
	if _, err := adminOrderVM(t, e, tid, "web-1", im.Name); err != nil {
		t.Errorf("order after unsuspend: %v", err)
	}
	if res, _ := b.post(base+"/unsuspend", nil); res.StatusCode != http.StatusConflict {
		t.Errorf("unsuspend twice: %d", res.StatusCode)
	}
	if res, _ := b.post("/admin/tenants/no-such-tenant/suspend", url.Values{"reason": {"x"}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", res.StatusCode)
	}
}

func TestAdminPlans(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.staffBrowser(store.RoleAdmin)
	plan := func(name, vcpus, mem, disk string) url.Values {
		return url.Values{"name": {name}, "vcpus": {vcpus}, "memory_mib": {mem}, "disk_gib": {disk}}
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string
	}{
		{"duplicate name", plan("small", "1", "2048", "20"), http.StatusConflict, "name"},
		{"zero vcpus", plan("tiny", "0", "512", "10"), http.StatusUnprocessableEntity, "vcpus"},
		{"vcpus not a number", plan("tiny", "two", "512", "10"), http.StatusUnprocessableEntity, "vcpus"},
		{"memory too small", plan("tiny", "1", "64", "10"), http.StatusUnprocessableEntity, "memory_mib"},
		{"bad name", plan("Tiny Plan!", "1", "512", "10"), http.StatusUnprocessableEntity, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := b.post("/admin/plans", tc.form)
			if res.StatusCode != tc.status || !adminHas(doc, "error-"+tc.field) {
				t.Errorf("status %d (want %d), error-%s shown %v", res.StatusCode, tc.status, tc.field, adminHas(doc, "error-"+tc.field))
			}
			if got := doc.Find(`[data-testid="admin-plan-vcpus-input"]`).AttrOr("value", ""); got != tc.form.Get("vcpus") {
				t.Errorf("vcpus input shows %q", got)
			}
		})
	}
	if plans, _ := e.st.ListPlans(ctx, false); len(plans) != 4 {
		t.Errorf("refused creates left %d plans", len(plans))
	}

	res, _ := b.post("/admin/plans", plan("xl", "8", "32768", "160"))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", res.StatusCode)
	}
	xl, err := e.st.GetPlan(ctx, "xl")
	if err != nil || !xl.Enabled || xl.VCPUs != 8 {
		t.Fatalf("created plan: %+v %v", xl, err)
	}
	_, doc := b.get("/admin/plans")
	if !strings.Contains(strings.Join(adminTestIDs(doc, "admin-plan-link"), ","), "xl") {
		t.Error("new plan not listed")
	}

	_, doc = b.get("/admin/plans/" + xl.ID)
	if got := doc.Find(`[data-testid="admin-plan-name"]`).AttrOr("value", ""); got != "xl" {
		t.Errorf("edit form name %q", got)
	}
	if _, ok := doc.Find(`[data-testid="admin-plan-enabled-input"]`).Attr("checked"); !ok {
		t.Error("enabled box not ticked")
	}
	for _, path := range []string{"/admin/plans/xl", "/admin/plans/no-such-plan"} {
		if res, _ := b.get(path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
	if res, _ := b.post("/admin/plans/no-such-plan", plan("x", "1", "512", "10")); res.StatusCode != http.StatusNotFound {
		t.Errorf("update unknown plan: %d", res.StatusCode)
	}

	// Rename onto another plan's name is refused; disabling works.
	res, doc = b.post("/admin/plans/"+xl.ID, plan("large", "8", "32768", "160"))
	if res.StatusCode != http.StatusConflict || !adminHas(doc, "error-name") {
		t.Errorf("rename to existing: %d", res.StatusCode)
	}
	res, doc = b.post("/admin/plans/"+xl.ID, plan("xl", "0", "32768", "160"))
	if res.StatusCode != http.StatusUnprocessableEntity || !adminHas(doc, "error-vcpus") {
		t.Errorf("zero vcpus: %d", res.StatusCode)
	}
	if p, _ := e.st.GetPlan(ctx, xl.ID); p.Name != "xl" || p.VCPUs != 8 || !p.Enabled {
		t.Errorf("refused update changed the plan: %+v", p)
	}
	res, _ = b.post("/admin/plans/"+xl.ID, plan("xl", "8", "32768", "200"))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", res.StatusCode)
	}
	if p, _ := e.st.GetPlan(ctx, xl.ID); p.Enabled || p.DiskGiB != 200 {
		t.Errorf("after disable: %+v", p)
	}
	form := plan("xl", "8", "32768", "200")
	form.Set("enabled", "on")
	if res, _ := b.post("/admin/plans/"+xl.ID, form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("enable: %d", res.StatusCode)
	}
	if p, _ := e.st.GetPlan(ctx, xl.ID); !p.Enabled {
		t.Error("plan not enabled again")
	}
}

func TestAdminImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.staffBrowser(store.RoleAdmin)
	image := func(name, checksum string) url.Values {
		return url.Values{"name": {name}, "os": {"Alpine"}, "version": {"3.20"},
			"source_url": {"https://images.example.com/" + name + ".qcow2"}, "checksum": {checksum}}
	}
	sum := "sha256:" + strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name, field string
		form        url.Values
	}{
		{"short checksum", "checksum", image("alpine", "sha256:abc")},
		{"not hex", "checksum", image("alpine", strings.Repeat("zz", 32))},
		{"md5", "checksum", image("alpine", "md5:"+strings.Repeat("0f", 16))},
		{"bad url", "source_url", func() url.Values { f := image("alpine", sum); f.Set("source_url", "ftp://x/a"); return f }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := b.post("/admin/images", tc.form)
			if res.StatusCode != http.StatusUnprocessableEntity || !adminHas(doc, "error-"+tc.field) {
				t.Errorf("status %d, error-%s shown %v", res.StatusCode, tc.field, adminHas(doc, "error-"+tc.field))
			}
			if got := doc.Find(`[data-testid="admin-image-checksum-input"]`).AttrOr("value", ""); got != tc.form.Get("checksum") {
				t.Errorf("checksum input shows %q", got)
			}
		})
	}
	if ims, _ := e.st.ListImages(ctx, false, ""); len(ims) != 0 {
		t.Fatalf("refused creates left %d images", len(ims))
	}
	if res, _ := b.post("/admin/images", image("alpine", sum)); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", res.StatusCode)
	}
	im, err := e.st.GetImage(ctx, "alpine")
	if err != nil || !im.Enabled || im.Checksum != sum {
		t.Fatalf("created image: %+v %v", im, err)
	}
	if res, doc := b.post("/admin/images", image("alpine", sum)); res.StatusCode != http.StatusConflict || !adminHas(doc, "error-name") {
		t.Errorf("duplicate: %d", res.StatusCode)
	}
	_, doc := b.get("/admin/images/" + im.ID)
	if got := doc.Find(`[data-testid="admin-image-checksum-input"]`).AttrOr("value", ""); got != sum {
		t.Errorf("edit form checksum %q", got)
	}
	if res, doc := b.post("/admin/images/"+im.ID, image("alpine", "nope")); res.StatusCode != http.StatusUnprocessableEntity || !adminHas(doc, "error-checksum") {
		t.Errorf("bad checksum on edit: %d", res.StatusCode)
	}
	if res, _ := b.post("/admin/images/"+im.ID, image("alpine", sum)); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", res.StatusCode)
	}
	if got, _ := e.st.GetImage(ctx, im.ID); got.Enabled {
		t.Error("image still enabled")
	}
	if res, _ := b.get("/admin/images/no-such-image"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown image: %d", res.StatusCode)
	}
}

func TestAdminUsers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adminTenantID(t, e, "Acme", "owner@acme.example")
	b := e.staffBrowser(store.RoleAdmin)
	staff := func(email, pw, role string) url.Values {
		return url.Values{"email": {email}, "password": {pw}, "role": {role}}
	}
	for _, tc := range []struct {
		name, field string
		form        url.Values
		status      int
	}{
		{"bad email", "email", staff("not-an-email", "long enough password", "operator"), http.StatusUnprocessableEntity},
		{"short password", "password", staff("ops@isp.example", "short", "operator"), http.StatusUnprocessableEntity},
		{"bad role", "role", staff("ops@isp.example", "long enough password", "owner"), http.StatusUnprocessableEntity},
		{"taken email", "email", staff("owner@acme.example", "long enough password", "operator"), http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := b.post("/admin/users", tc.form)
			if res.StatusCode != tc.status || !adminHas(doc, "error-"+tc.field) {
				t.Errorf("status %d (want %d), error-%s shown %v", res.StatusCode, tc.status, tc.field, adminHas(doc, "error-"+tc.field))
			}
			if got := doc.Find(`[data-testid="admin-user-create-email"]`).AttrOr("value", ""); got != tc.form.Get("email") {
				t.Errorf("email input shows %q", got)
			}
		})
	}
	if _, err := e.st.GetUserByEmail(ctx, "ops@isp.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused create made a user: %v", err)
	}
	if res, _ := b.post("/admin/users", staff("Ops@ISP.example", "long enough password", "operator")); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", res.StatusCode)
	}
	u, err := e.st.GetUserByEmail(ctx, "ops@isp.example")
	if err != nil || !u.IsStaff() || u.Role != store.RoleOperator {
		t.Fatalf("created user: %+v %v", u, err)
	}
	ops := e.browser()
	ops.login("ops@isp.example", "long enough password")
	if res, _ := ops.get("/admin/tenants"); res.StatusCode != http.StatusOK {
		t.Errorf("new operator cannot see the admin panel: %d", res.StatusCode)
	}

	_, doc := b.get("/admin/users?q=acme.example")
	if got := adminTestIDs(doc, "admin-user-email"); len(got) != 1 || got[0] != "owner@acme.example" {
		t.Errorf("search: %q", got)
	}
	if got := adminTestIDs(doc, "admin-user-tenant"); len(got) != 1 || got[0] != "Acme" {
		t.Errorf("tenant column: %q", got)
	}
	_, doc = b.get("/admin/users?q=ops@")
	if got := adminTestIDs(doc, "admin-user-tenant"); len(got) != 1 || got[0] != "staff" {
		t.Errorf("staff tenant column: %q", got)
	}
	if got := adminTestIDs(doc, "admin-user-last-login"); len(got) != 1 || got[0] == "never" {
		t.Errorf("last login: %q", got)
	}
}

func TestAdminVMList(t *testing.T) {
	e := newEnv(t)
	im := e.image("debian-12")
	acme := adminTenantID(t, e, "Acme", "owner@acme.example")
	globex := adminTenantID(t, e, "Globex", "boss@globex.example")
	for _, o := range []struct{ tenant, name string }{{acme, "web-1"}, {acme, "web-2"}, {globex, "db-1"}} {
		if _, err := adminOrderVM(t, e, o.tenant, o.name, im.Name); err != nil {
			t.Fatal(err)
		}
	}
	b := e.staffBrowser(store.RoleAuditor)
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"all", "", []string{"db-1", "web-2", "web-1"}},
		{"tenant substring", "?tenant=glob", []string{"db-1"}},
		{"state pending", "?state=pending", []string{"db-1", "web-2", "web-1"}},
		{"state running", "?state=running", nil},
		{"both", "?tenant=acme&state=pending", []string{"web-2", "web-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, doc := b.get("/admin/vms" + tc.query)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := adminTestIDs(doc, "admin-vm-name"); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	_, doc := b.get("/admin/vms?tenant=glob")
	if href := doc.Find(`[data-testid="admin-vm-tenant-link"]`).AttrOr("href", ""); href != "/admin/tenants/"+globex {
		t.Errorf("tenant link %q", href)
	}
	if n := doc.Find(`[data-testid="admin-vms-filter-state"] option`).Length(); n != len(adminVMStates())+1 {
		t.Errorf("state options: %d", n)
	}
}

func TestAdminAudit(t *testing.T) {
	e := newEnv(t)
	acme := adminTenantID(t, e, "Acme", "owner@acme.example")
	adminTenantID(t, e, "Globex", "boss@globex.example")
	b := e.staffBrowser(store.RoleAdmin)
	quota := url.Values{"instances": {"3"}, "vcpus": {"6"}, "memory_mib": {"8192"}, "disk_gib": {"100"}, "ssh_keys": {"4"}, "port_forwards": {"2"}}
	if res, _ := b.post("/admin/tenants/"+acme+"/quota", quota); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("quota: %d", res.StatusCode)
	}
	// A refused change is logged as a failure.
	if res, _ := b.post("/admin/plans", url.Values{"name": {"small"}, "vcpus": {"1"}, "memory_mib": {"2048"}, "disk_gib": {"20"}}); res.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate plan: %d", res.StatusCode)
	}
	entries, _, err := e.st.ListAudit(context.Background(), store.AuditFilter{Action: "tenant.quota.update"}, store.Page{})
	if err != nil || len(entries) != 1 {
		t.Fatalf("quota audit entries: %v %v", entries, err)
	}
	adminEmail := entries[0].ActorEmail
	if !strings.HasPrefix(adminEmail, "admin-") {
		t.Fatalf("actor %q", adminEmail)
	}

	rows := func(t *testing.T, query string) *goquery.Selection {
		t.Helper()
		res, doc := b.get("/admin/audit" + query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		return doc.Find(`[data-testid="admin-audit-row"]`)
	}
	each := func(t *testing.T, sel *goquery.Selection, ok func(*goquery.Selection) bool) {
		t.Helper()
		if sel.Length() == 0 {
			t.Fatal("no rows")
		}
		sel.Each(func(i int, s *goquery.Selection) {
			if !ok(s) {
				t.Errorf("row %d does not match: %q", i, strings.Join(strings.Fields(s.Text()), " "))
			}
		})
	}
	text := func(s *goquery.Selection, testid string) string {
		return strings.TrimSpace(s.Find(`[data-testid="` + testid + `"]`).Text())
	}

	t.Run("actor", func(t *testing.T) {
		each(t, rows(t, "?actor="+url.QueryEscape(adminEmail[:10])), func(s *goquery.Selection) bool { return text(s, "admin-audit-actor") == adminEmail })
	})
	t.Run("action prefix", func(t *testing.T) {
		sel := rows(t, "?action=tenant.")
		each(t, sel, func(s *goquery.Selection) bool { return strings.HasPrefix(text(s, "admin-audit-action"), "tenant.") })
		var quotaRow *goquery.Selection
		sel.Each(func(_ int, s *goquery.Selection) {
			if text(s, "admin-audit-action") == "tenant.quota.update" {
				quotaRow = s
			}
		})
		if quotaRow == nil {
			t.Fatal("the admin's quota change is not in the log")
		}
		if got := text(quotaRow, "admin-audit-tenant"); got != "Acme" {
			t.Errorf("tenant column %q, want the name", got)
		}
		if got := text(quotaRow, "admin-audit-actor"); got != adminEmail {
			t.Errorf("actor column %q", got)
		}
	})
	t.Run("result failure", func(t *testing.T) {
		sel := rows(t, "?result=failure")
		each(t, sel, func(s *goquery.Selection) bool { return s.AttrOr("data-result", "") == "failure" })
		if got := text(sel.First(), "admin-audit-action"); got != "plan.create" {
			t.Errorf("newest failure %q", got)
		}
	})
	t.Run("result any", func(t *testing.T) {
		if all, any := rows(t, ""), rows(t, "?result=any"); all.Length() != any.Length() {
			t.Errorf("any: %d rows, unfiltered %d", any.Length(), all.Length())
		}
	})
	for _, q := range []string{acme, "acme"} {
		t.Run("tenant "+q, func(t *testing.T) {
			each(t, rows(t, "?tenant="+q), func(s *goquery.Selection) bool { return text(s, "admin-audit-tenant") == "Acme" })
		})
	}
	t.Run("no match", func(t *testing.T) {
		res, doc := b.get("/admin/audit?tenant=nobody&action=vm.")
		if res.StatusCode != http.StatusOK || !adminHas(doc, "admin-audit-empty") {
			t.Errorf("status %d, empty state %v", res.StatusCode, adminHas(doc, "admin-audit-empty"))
		}
	})
}
