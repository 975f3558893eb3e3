package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestWebAdminMachines(t *testing.T) {
	e, logs := newLoggedEnv(t)
	admin := e.staffBrowser(store.RoleAdmin)
	operator := e.staffBrowser(store.RoleOperator)
	auditor := e.staffBrowser(store.RoleAuditor)
	ctx := context.Background()
	var pages []string
	page := func(b *browser, path string) (int, string) {
		res, doc := b.get(path)
		html, _ := doc.Html()
		pages = append(pages, html)
		return res.StatusCode, html
	}

	form := url.Values{"name": {"rack1-node1"}, "macs": {"52:54:00:cc:00:01\n52:54:00:cc:00:02"}, "power_type": {"ipmi"},
		"power_params": {"address=10.0.0.7\nuser=admin"}, "power_password": {bmcPassword}}
	for _, tc := range []struct {
		name   string
		b      *browser
		change func(url.Values)
		status int
		field  string
	}{
		{"bad mac", admin, func(f url.Values) { f.Set("macs", "52:54:00:cc") }, 422, "macs"},
		{"bad params", admin, func(f url.Values) { f.Set("power_params", "address") }, 422, "power_params"},
		{"operator", operator, func(url.Values) {}, 403, ""},
		{"auditor", auditor, func(url.Values) {}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			tc.change(f)
			res, doc := tc.b.post("/admin/machines", f)
			html, _ := doc.Html()
			pages = append(pages, html)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.field != "" && doc.Find(`[data-testid="input-`+tc.field+`"][aria-invalid="true"]`).Length() != 1 {
				t.Errorf("no inline error on %s", tc.field)
			}
			if v, ok := doc.Find(`[data-testid="input-power_password"]`).Attr("value"); tc.field != "" && (!ok || v != "") {
				t.Errorf("password filled back in: %q", v)
			}
		})
	}
	e.t = t
	res, _ := admin.post("/admin/machines", form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("enlist: %d", res.StatusCode)
	}
	m, err := e.st.GetMachine(ctx, "rack1-node1")
	if err != nil {
		t.Fatal(err)
	}

	// The list shows it; the discovered section offers one-click enlistment.
	if err := e.st.RecordDiscovered(ctx, "52:54:00:dd:00:01", "", "PXEClient:Arch:00000", 0, ""); err != nil {
		t.Fatal(err)
	}
	code, html := page(auditor, "/admin/machines")
	if code != 200 || !strings.Contains(html, "rack1-node1") || !strings.Contains(html, "52:54:00:cc:00:01") ||
		!strings.Contains(html, `data-state="new"`) || !strings.Contains(html, "52:54:00:dd:00:01") || strings.Contains(html, "admin-discovered-enlist-form") ||
		!strings.Contains(html, `data-testid="nav-admin-machines"`) {
		t.Errorf("list page for auditor: %d", code)
	}
	res, _ = admin.post("/admin/discovered/"+url.PathEscape("52:54:00:dd:00:01")+"/enlist", url.Values{"name": {"found-1"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("enlist discovered: %d", res.StatusCode)
	}
	if _, err := e.st.GetMachine(ctx, "found-1"); err != nil {
		t.Errorf("discovered machine: %v", err)
	}

	// The page offers the actions of its state; a refused one names the states.
	path := "/admin/machines/" + m.ID
	_, html = page(operator, path)
	if !strings.Contains(html, `data-testid="action-commission"`) || strings.Contains(html, `data-testid="action-deploy"`) ||
		!strings.Contains(html, `data-testid="action-power_cycle"`) || strings.Contains(html, "admin-machine-settings-form") {
		t.Errorf("operator page actions")
	}
	res, doc := operator.post(path+"/actions", url.Values{"type": {"release"}})
	if html, _ := doc.Html(); res.StatusCode != http.StatusConflict || !strings.Contains(html, "only from deployed or failed_deployment") {
		t.Errorf("refused action: %d", res.StatusCode)
	}
	if res, _ := auditor.post(path+"/actions", url.Values{"type": {"commission"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("auditor action: %d", res.StatusCode)
	}
	if res, _ := operator.post(path+"/actions", url.Values{"type": {"commission"}, "reason": {"new rack"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("commission: %d", res.StatusCode)
	}

	// The agent's report makes it ready with its inventory on the page.
	tok, err := e.st.IssueAgentToken(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if code, res := e.api("POST", "/api/agent/v1/report", "", agentReport(tok, "52:54:00:cc:00:01")); code != http.StatusNoContent {
		t.Fatalf("report: %d %v", code, res)
	}
	_, html = page(admin, path)
	for _, want := range []string{`data-state="ready"`, "AMD EPYC 7302P", "16 cores, 32 threads", "128 GiB", "SAMSUNG MZ7LH960", "S45NNA0M123456",
		"960.2 GB", "eno1", "up, 10000 Mb/s", "commissioned: 16 cores, 128 GiB", "new rack", `data-testid="action-deploy"`, "machine-has-password", "address=10.0.0.7"} {
		if !strings.Contains(html, want) {
			t.Errorf("machine page lacks %q", want)
		}
	}

	// Settings: an empty password keeps the stored one.
	before := m.PowerSecret
	res, _ = admin.post(path, url.Values{"name": {"rack1-node1"}, "macs": {"52:54:00:cc:00:01"}, "power_type": {"ipmi"}, "power_params": {"address=10.0.0.8"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save settings: %d", res.StatusCode)
	}
	if d, _ := e.st.GetMachine(ctx, m.ID); d.PowerSecret != before || d.Params()["address"] != "10.0.0.8" || len(d.MACs) != 1 {
		t.Errorf("after settings: %+v", d.Machine)
	}
	if res, _ := operator.post(path, url.Values{"name": {"x"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("operator settings: %d", res.StatusCode)
	}

	// Outsiders.
	cust := e.browser()
	cust.signup("Buyer", "b@buyer.example")
	if res, _ := cust.get(path); res.StatusCode != http.StatusNotFound {
		t.Errorf("customer: %d", res.StatusCode)
	}
	if res, _ := e.browser().get(path); res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous: %d", res.StatusCode)
	}

	// Delete.
	if res, _ := admin.post(path+"/delete", nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if _, err := e.st.GetMachine(ctx, m.ID); err == nil {
		t.Error("machine still there")
	}

	for _, p := range pages {
		if strings.Contains(p, bmcPassword) || strings.Contains(p, before) {
			t.Error("a page shows the password or its ciphertext")
		}
	}
	if strings.Contains(logs.String(), bmcPassword) {
		t.Error("the logs show the password")
	}
}
