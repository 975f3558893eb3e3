package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestVMPlanChangeAndRebuildForms changes a VM's plan and image from its
// page: the forms offer the plans with the reason those that do not fit
// cannot be chosen, a refusal changes nothing, an accepted change shows
// its progress while it runs, and read-only members see no forms.
func TestVMPlanChangeAndRebuildForms(t *testing.T) {
	sh := newShop(t)
	marked := sh.e.image("debian-12-marked")
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "nano", key)
	if _, doc := sh.owner.get("/vms/" + id); doc.Find(`[data-testid=vm-resize]`).Length() != 0 {
		t.Error("a pending VM offers a plan change")
	}
	sh.setState(id, store.VMRunning)
	if err := sh.e.st.SetTenantQuota(context.Background(), store.Actor{Email: "test"}, sh.tenant,
		store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 4096, DiskGiB: 200, SSHKeys: 5}); err != nil {
		t.Fatal(err)
	}

	_, doc := sh.owner.get("/vms/" + id)
	form := doc.Find(`[data-testid=vm-action-resize]`)
	if tok, _ := form.Find(`input[name=_csrf]`).Attr("value"); tok == "" {
		t.Error("the plan change form has no CSRF token")
	}
	for name, enabled := range map[string]bool{"small": true, "medium": true, "large": false} {
		opt := form.Find(`[data-testid=vm-resize-option-` + name + `]`)
		if _, disabled := opt.Attr("disabled"); opt.Length() != 1 || disabled == enabled {
			t.Errorf("plan %s: %d options, disabled %v", name, opt.Length(), disabled)
		}
	}
	if form.Find(`[data-testid=vm-resize-option-nano]`).Length() != 0 {
		t.Error("the VM's own plan is offered")
	}
	if got := form.Find(`[data-testid=vm-resize-refusals]`).Text(); !strings.Contains(got, "the large plan needs 8 GiB RAM; your quota leaves 4 GiB for this VM") {
		t.Errorf("refusals: %q", got)
	}
	images := doc.Find(`[data-testid=vm-rebuild-image] option`)
	if sel, _ := images.Filter(`[selected]`).Attr("value"); images.Length() != 2 || sel != sh.image.ID {
		t.Errorf("rebuild images: %d, selected %q", images.Length(), sel)
	}

	res, _ := sh.owner.post("/vms/"+id+"/actions", url.Values{"type": {"resize"}, "plan": {"plan-large"}})
	if f := flashOf(follow(sh.owner, res)); res.StatusCode != http.StatusSeeOther ||
		!strings.Contains(f, "Could not resize web-1: the large plan needs 8 GiB RAM; your quota leaves 4 GiB for this VM.") {
		t.Errorf("refused resize: %d, flash %q", res.StatusCode, f)
	}
	if d := sh.vm(sh.tenant, id); d.PlanName != "nano" || len(d.Operations) != 0 {
		t.Errorf("a refused resize changed the VM: %s, %d operations", d.PlanName, len(d.Operations))
	}

	res, _ = sh.owner.post("/vms/"+id+"/actions", url.Values{"type": {"resize"}, "plan": {"plan-small"}})
	if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, "Resize of web-1 queued.") {
		t.Errorf("resize flash %q", f)
	}
	if d := sh.vm(sh.tenant, id); d.PlanName != "small" || len(d.Operations) != 1 || d.Operations[0].Type != store.OpResize {
		t.Errorf("after resize: %s, %+v", d.PlanName, d.Operations)
	}
	// While the provisioner works, the status block polls and shows the change.
	_, doc = sh.owner.get("/vms/" + id + "/status")
	block := doc.Find(`#vm-status`)
	if hx, _ := block.Attr("hx-get"); hx != "/vms/"+id+"/status" || block.Find(`[data-testid=vm-actions-busy]`).Length() != 1 {
		t.Errorf("status during the resize: hx-get %q, busy %d", hx, block.Find(`[data-testid=vm-actions-busy]`).Length())
	}
	if got := block.Find(`[data-testid=timeline-step]`).Last().Text(); !strings.Contains(got, "Plan change accepted: nano → small") {
		t.Errorf("last timeline step %q", got)
	}
	if got := block.Find(`[data-testid=operation-row]`).First().Text(); !strings.Contains(got, "resize") || !strings.Contains(got, "queued") {
		t.Errorf("operation row %q", got)
	}

	// Once done, a rebuild from the other image.
	settleVM(t, sh.e, id)
	res, _ = sh.owner.post("/vms/"+id+"/actions", url.Values{"type": {"rebuild"}, "image": {"no-such-image"}})
	if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, "Could not rebuild web-1: this image does not exist or is no longer offered.") {
		t.Errorf("refused rebuild flash %q", f)
	}
	res, _ = sh.owner.post("/vms/"+id+"/actions", url.Values{"type": {"rebuild"}, "image": {marked.ID}})
	if f := flashOf(follow(sh.owner, res)); !strings.Contains(f, "Rebuild of web-1 queued.") {
		t.Errorf("rebuild flash %q", f)
	}
	if d := sh.vm(sh.tenant, id); d.ImageName != "debian-12-marked" || d.Name != "web-1" {
		t.Errorf("after rebuild: image %s, name %s", d.ImageName, d.Name)
	}

	settleVM(t, sh.e, id)
	reader := sh.join(sh.inviteLink(sh.owner, "reader@acme.example", store.RoleReadOnly))
	_, doc = reader.get("/vms/" + id)
	if doc.Find(`[data-testid=vm-resize]`).Length() != 0 || doc.Find(`[data-testid=vm-rebuild]`).Length() != 0 {
		t.Error("a read-only member is offered the plan change or rebuild")
	}
	if res, _ := reader.post("/vms/"+id+"/actions", url.Values{"type": {"resize"}, "plan": {"plan-medium"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("read-only member's resize: %d", res.StatusCode)
	}
	if d := sh.vm(sh.tenant, id); d.PlanName != "small" {
		t.Errorf("a read-only member changed the plan to %s", d.PlanName)
	}
}
