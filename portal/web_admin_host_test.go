package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// fresh copies a form without its CSRF token: browser.post writes its own
// token into the form it is given.
func fresh(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		if k != "_csrf" {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

func TestAdminInfraPagesRender(t *testing.T) {
	e := newEnv(t)
	tid := adminTenantID(t, e, "Acme", "owner@acme.example")
	im := e.image("debian-12")
	vm, err := adminOrderVM(t, e, tid, "web-1", im.Name)
	if err != nil {
		t.Fatal(err)
	}
	kvm1 := hostID(t, e, "kvm-1")
	pages := []struct{ name, path, testid string }{
		{"hosts", "/admin/hosts", "admin-hosts-page"},
		{"host", "/admin/hosts/" + kvm1, "admin-host-page"},
		{"subnets", "/admin/subnets", "admin-subnets-page"},
		{"vm", "/admin/vms/" + vm.ID, "admin-vm-page"},
	}
	for _, role := range []string{store.RoleAdmin, store.RoleOperator, store.RoleAuditor} {
		b := e.staffBrowser(role)
		t.Run(role, func(t *testing.T) {
			for _, p := range pages {
				res, doc := b.get(p.path)
				if res.StatusCode != http.StatusOK || !adminHas(doc, p.testid) {
					t.Errorf("%s: status %d, %s present %v", p.name, res.StatusCode, p.testid, adminHas(doc, p.testid))
				}
			}
			_, doc := b.get("/admin/hosts")
			if got, want := adminHas(doc, "admin-host-create-form"), role == store.RoleAdmin; got != want {
				t.Errorf("host form shown: %v, want %v", got, want)
			}
			if nav := doc.Find("nav").Text(); !strings.Contains(nav, "Hosts") || !strings.Contains(nav, "Subnets") {
				t.Errorf("navigation lacks hosts or subnets: %q", nav)
			}
			_, doc = b.get("/admin/hosts/" + kvm1)
			if got, want := adminHas(doc, "admin-host-settings-form"), role == store.RoleAdmin; got != want {
				t.Errorf("host settings form shown: %v, want %v", got, want)
			}
			if ids := adminTestIDs(doc, "admin-vm-link"); len(ids) != 1 || ids[0] != "web-1" {
				t.Errorf("vms on host: %v", ids)
			}
			_, doc = b.get("/admin/subnets")
			if got, want := adminHas(doc, "admin-subnet-create-form"), role == store.RoleAdmin; got != want {
				t.Errorf("subnet form shown: %v, want %v", got, want)
			}
			// VM names link to the staff VM page.
			for _, path := range []string{"/admin/vms", "/admin/tenants/" + tid} {
				_, doc = b.get(path)
				if href, _ := doc.Find(`[data-testid=admin-vm-link]`).Attr("href"); href != "/admin/vms/"+vm.ID {
					t.Errorf("%s: vm link %q", path, href)
				}
			}
		})
	}
	// Customers do not see staff pages; strangers are sent to log in.
	cust := e.browser()
	cust.signup("Other", "o@other.example")
	anon := e.browser()
	for _, p := range pages {
		if res, _ := cust.get(p.path); res.StatusCode != http.StatusNotFound {
			t.Errorf("customer %s: %d", p.path, res.StatusCode)
		}
		if res, _ := anon.get(p.path); res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			t.Errorf("anonymous %s: %d", p.path, res.StatusCode)
		} else if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
			t.Errorf("anonymous %s: sent to %q", p.path, loc)
		}
	}
}

func TestAdminHostForms(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.staffBrowser(store.RoleAdmin)
	operator := e.staffBrowser(store.RoleOperator)
	auditor := e.staffBrowser(store.RoleAuditor)
	cust := e.browser()
	cust.signup("Acme", "owner@acme.example")
	good := url.Values{"name": {"kvm-2"}, "uri": {"qemu+ssh://root@kvm-2.example.net/system"}, "cpu_ratio": {"3"}, "bridge": {"br0"}}
	with := func(k, v string) url.Values {
		f := fresh(good)
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name   string
		b      *browser
		form   url.Values
		status int
		field  string
	}{
		{"ratio out of range", admin, with("cpu_ratio", "20"), 422, "cpu_ratio"},
		{"ratio not a number", admin, with("memory_ratio", "lots"), 422, "memory_ratio"},
		{"bad uri", admin, with("uri", "ftp://x"), 422, "uri"},
		{"duplicate", admin, with("name", "kvm-1"), 409, "name"},
		{"operator", operator, fresh(good), 403, ""},
		{"auditor", auditor, fresh(good), 403, ""},
		{"customer", cust, fresh(good), 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			res, doc := tc.b.post("/admin/hosts", tc.form)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.field != "" {
				if _, bad := doc.Find(`[name="` + tc.field + `"]`).Attr("aria-invalid"); !bad {
					t.Errorf("%s not marked invalid", tc.field)
				}
				if v, _ := doc.Find(`[name="uri"]`).Attr("value"); v != tc.form.Get("uri") {
					t.Errorf("form not shown again: uri %q", v)
				}
			}
		})
	}
	e.t = t
	if hosts, _ := e.st.ListHosts(ctx); len(hosts) != 1 {
		t.Fatalf("refused forms added hosts: %d", len(hosts))
	}
	res, _ := admin.post("/admin/hosts", good)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/hosts/") {
		t.Fatalf("add host: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	h, err := e.st.GetHost(ctx, "kvm-2")
	if err != nil || h.CPURatio != 3 || h.MemoryRatio != 1 || h.Bridge != "br0" {
		t.Fatalf("added host: %+v %v", h, err)
	}
	page := "/admin/hosts/" + h.ID

	// Settings.
	settings := url.Values{"cpu_ratio": {"2"}, "memory_ratio": {"1.5"}, "disk_ratio": {"1"}, "reserved_cores": {"1"},
		"reserved_memory_mib": {"2048"}, "reserved_disk_gib": {"10"}, "maintenance": {"on"}, "enabled": {"on"}}
	if res, _ := operator.post(page, fresh(settings)); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator settings: %d", res.StatusCode)
	}
	bad := fresh(settings)
	bad.Set("disk_ratio", "0.1")
	if res, doc := admin.post(page, bad); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad settings: %d", res.StatusCode)
	} else if _, inv := doc.Find(`[name=disk_ratio]`).Attr("aria-invalid"); !inv {
		t.Error("disk_ratio not marked invalid")
	}
	if res, _ := admin.post(page, settings); res.StatusCode != http.StatusSeeOther {
		t.Errorf("settings: %d", res.StatusCode)
	}
	h, _ = e.st.GetHost(ctx, h.ID)
	if h.CPURatio != 2 || h.MemoryRatio != 1.5 || h.ReservedMemoryMiB != 2048 || !h.Maintenance || !h.Enabled {
		t.Errorf("saved settings: %+v", h.Host)
	}

	// The detail page shows the pinned key's fingerprint and the figures.
	if err := e.st.RecordHostFacts(ctx, h.ID, store.Facts{CPUModel: "EPYC 7302", Cores: 16, MemoryMiB: 65536, DiskGiB: 2000, DiskFreeGiB: 1900},
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"); err != nil {
		t.Fatal(err)
	}
	_, doc := auditor.get(page)
	if fp := doc.Find(`[data-testid=host-fingerprint]`).Text(); !strings.Contains(fp, "SHA256:") || strings.Contains(fp, "AAAA") {
		t.Errorf("fingerprint shown: %q", fp)
	}
	row := doc.Find(`[data-testid=host-capacity-row-memory]`)
	for testid, want := range map[string]string{"cap-physical": "64 GiB", "cap-overcommitted": "96 GiB", "cap-reserved": "2 GiB", "cap-allocated": "0 MiB", "cap-free": "94 GiB"} {
		if got := row.Find(`[data-testid=` + testid + `]`).Text(); !strings.Contains(got, want) {
			t.Errorf("memory %s: %q, want %q", testid, got, want)
		}
	}
	_, doc = auditor.get("/admin/hosts")
	if got := doc.Find(`[data-id="` + h.ID + `"] [data-testid=host-maintenance]`).Length(); got != 1 {
		t.Error("maintenance badge missing from the list")
	}
	if err := e.st.RecordHostError(ctx, h.ID, "connection refused"); err != nil {
		t.Fatal(err)
	}
	_, doc = auditor.get("/admin/hosts")
	if got := doc.Find(`[data-id="` + h.ID + `"] [data-testid=host-last-error]`).Text(); got != "connection refused" {
		t.Errorf("error host: %q", got)
	}

	// Delete: needs the confirmation, refused while VMs are on the host.
	if res, _ := admin.post(page+"/delete", nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("unconfirmed delete: %d", res.StatusCode)
	}
	if _, err := e.st.GetHost(ctx, h.ID); err != nil {
		t.Errorf("unconfirmed delete removed the host: %v", err)
	}
	if res, _ := operator.post(page+"/delete", url.Values{"confirm": {"on"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator delete: %d", res.StatusCode)
	}
	tid := adminTenantID(t, e, "Buyer", "b@buyer.example")
	e.image("debian-12")
	if _, err := adminOrderVM(t, e, tid, "web-1", "debian-12"); err != nil {
		t.Fatal(err)
	}
	kvm1 := hostID(t, e, "kvm-1")
	res, _ = admin.post("/admin/hosts/"+kvm1+"/delete", url.Values{"confirm": {"on"}})
	if doc := follow(admin, res); !strings.Contains(flashOf(doc), "holds 1 VM") {
		t.Errorf("delete busy host flash: %q", flashOf(doc))
	}
	if _, err := e.st.GetHost(ctx, kvm1); err != nil {
		t.Errorf("busy host deleted: %v", err)
	}
	if res, _ := admin.post(page+"/delete", url.Values{"confirm": {"on"}}); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/hosts" {
		t.Errorf("delete: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.st.GetHost(ctx, h.ID); err == nil {
		t.Error("host not deleted")
	}
}

func TestAdminSubnetForms(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.staffBrowser(store.RoleAdmin)
	operator := e.staffBrowser(store.RoleOperator)
	good := url.Values{"name": {"public-1"}, "cidr": {"192.0.2.0/24"}, "gateway": {"192.0.2.1"}, "dns_servers": {"192.0.2.53, 192.0.2.54"},
		"range_start": {"192.0.2.10"}, "range_end": {"192.0.2.109"}}
	if res, _ := operator.post("/admin/subnets", fresh(good)); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator: %d", res.StatusCode)
	}
	bad := fresh(good)
	bad.Set("cidr", "192.0.2.0/33")
	if res, doc := admin.post("/admin/subnets", bad); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad cidr: %d", res.StatusCode)
	} else if _, inv := doc.Find(`[name=cidr]`).Attr("aria-invalid"); !inv {
		t.Error("cidr not marked invalid")
	}
	if l, _ := e.st.ListSubnets(ctx); len(l) != 0 {
		t.Fatalf("refused forms added subnets: %v", l)
	}
	if res, _ := admin.post("/admin/subnets", good); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", res.StatusCode)
	}
	l, _ := e.st.ListSubnets(ctx)
	if len(l) != 1 || l[0].DNSServers != "192.0.2.53,192.0.2.54" || l[0].Size != 100 {
		t.Fatalf("added: %+v", l)
	}
	_, doc := operator.get("/admin/subnets")
	if u, _ := doc.Find(`[data-testid=admin-subnet-usage]`).Attr("data-free"); u != "100" {
		t.Errorf("free shown: %q", u)
	}
	del := "/admin/subnets/" + l[0].ID + "/delete"
	if res, _ := operator.post(del, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator delete: %d", res.StatusCode)
	}
	if res, _ := admin.post(del, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if l, _ := e.st.ListSubnets(ctx); len(l) != 0 {
		t.Errorf("not deleted: %v", l)
	}
	if res, _ := admin.post("/admin/subnets/nope/delete", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete unknown: %d", res.StatusCode)
	}
}

func TestAdminVMDetailAndRetry(t *testing.T) {
	sh := newShop(t)
	e := sh.e
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	failVM(t, e, id)
	operator := e.staffBrowser(store.RoleOperator)
	auditor := e.staffBrowser(store.RoleAuditor)

	_, doc := operator.get("/admin/vms/" + id)
	if got := doc.Find(`[data-testid=step-detail]`).Text(); !strings.Contains(got, "secret-detail-42") {
		t.Errorf("staff page lacks the step detail: %q", got)
	}
	if got := doc.Find(`[data-testid=admin-vm-host]`).Text(); !strings.Contains(got, "kvm-1") {
		t.Errorf("host: %q", got)
	}
	if got := doc.Find(`[data-testid=admin-vm-tenant]`).Text(); got != "Acme" {
		t.Errorf("tenant: %q", got)
	}
	if got := doc.Find(`[data-testid=vm-dns]`).Text(); got != "web-1.acme.cloud.internal" {
		t.Errorf("dns: %q", got)
	}
	if got := doc.Find(`[data-testid=vm-last-error]`).Text(); !strings.Contains(got, "libvirt refused") {
		t.Errorf("last error: %q", got)
	}
	if !adminHas(doc, "admin-vm-retry") {
		t.Error("no retry button for an operator on a VM in error")
	}
	_, doc = auditor.get("/admin/vms/" + id)
	if adminHas(doc, "admin-vm-retry") {
		t.Error("auditor sees the retry button")
	}
	_, doc = sh.owner.get("/vms/" + id)
	if strings.Contains(doc.Text(), "secret-detail-42") {
		t.Error("customer page shows the staff-only detail")
	}
	if res, _ := sh.owner.get("/admin/vms/" + id); res.StatusCode != http.StatusNotFound {
		t.Errorf("customer on staff vm page: %d", res.StatusCode)
	}
	if res, _ := operator.get("/admin/vms/nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown vm: %d", res.StatusCode)
	}

	if res, _ := auditor.post("/admin/vms/"+id+"/retry", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("auditor retry: %d", res.StatusCode)
	}
	if vm := sh.vm("", id); vm.NeedsWork {
		t.Fatal("refused retry queued work")
	}
	res, _ := operator.post("/admin/vms/"+id+"/retry", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/vms/"+id {
		t.Fatalf("retry: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	vm := sh.vm("", id)
	if !vm.NeedsWork || vm.Attempts != 0 || vm.Steps[len(vm.Steps)-1].Step != "retry" {
		t.Errorf("after retry: needs work %v, attempts %d, steps %+v", vm.NeedsWork, vm.Attempts, vm.Steps)
	}
	// A VM not in state error cannot be retried.
	sh.setState(id, store.VMRunning)
	res, _ = operator.post("/admin/vms/"+id+"/retry", nil)
	if doc := follow(operator, res); !strings.Contains(flashOf(doc), "Only a VM in state error") {
		t.Errorf("retry of a running VM: %q", flashOf(doc))
	}
}

func TestOrderFormConsidersCapacity(t *testing.T) {
	sh := newShop(t)
	e := sh.e
	tinyHost(t, e)
	sh.addKey(sh.owner, sh.tenant, "laptop")
	_, doc := sh.owner.get("/vms/new")
	large := doc.Find(`[data-testid=plan-card][data-plan=plan-large]`)
	if fits, _ := large.Attr("data-fits"); fits != "false" {
		t.Errorf("large fits: %q", fits)
	}
	if got := large.Find(`[data-testid=plan-reason]`).Text(); got != "no host has 8 GiB RAM free; best has 6.2 GiB at 1.0× memory overcommit" {
		t.Errorf("large reason: %q", got)
	}
	if fits, _ := doc.Find(`[data-testid=plan-card][data-plan=plan-medium]`).Attr("data-fits"); fits != "true" {
		t.Errorf("medium fits: %q", fits)
	}
	_, doc = sh.owner.get("/dashboard")
	if !adminHas(doc, "create-hint") {
		t.Error("dashboard refuses although small plans fit")
	}
	// With no usable host at all nothing can be ordered.
	ctx := context.Background()
	tiny, _ := e.st.GetHost(ctx, "tiny")
	if _, err := e.st.UpdateHost(ctx, store.Actor{Email: "test"}, tiny.ID, store.HostSettings{CPURatio: 4, MemoryRatio: 1, DiskRatio: 1, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	_, doc = sh.owner.get("/dashboard")
	if got := doc.Find(`[data-testid=create-reason]`).Text(); got != "no VM hosts are available; staff must add one" {
		t.Errorf("dashboard reason: %q", got)
	}
	_, doc = sh.owner.get("/vms/new")
	if !adminHas(doc, "no-plan-fits") {
		t.Error("order form offers plans without hosts")
	}
}

func TestVMDetailSSHCommand(t *testing.T) {
	sh := newShop(t)
	e := sh.e
	ctx := context.Background()
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	if _, err := e.st.CreateSubnet(ctx, store.Actor{Email: "test"}, store.SubnetInput{Name: "lan", CIDR: "192.0.2.0/24",
		RangeStart: "192.0.2.10", RangeEnd: "192.0.2.20"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AllocateIP(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, doc := sh.owner.get("/vms/" + id)
	if adminHas(doc, "vm-ssh-command") {
		t.Error("ssh command shown before the VM runs")
	}
	if got := doc.Find(`[data-testid=vm-ip]`).Text(); got != "192.0.2.10" {
		t.Errorf("ip: %q", got)
	}
	sh.setState(id, store.VMRunning)
	_, doc = sh.owner.get("/vms/" + id)
	if got := doc.Find(`[data-testid=vm-ssh-command]`).Text(); got != "ssh debian@192.0.2.10" {
		t.Errorf("ssh command: %q", got)
	}
	if got := doc.Find(`[data-testid=vm-dns]`).Text(); got != "web-1.acme.cloud.internal" {
		t.Errorf("dns: %q", got)
	}
}
