package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestVMNewFromSnapshot offers the tenant's ready snapshots on the order
// form, only to that tenant; ordering from one makes a VM with the
// snapshot's source, and choosing an image too is refused at the field.
func TestVMNewFromSnapshot(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	settleVM(t, sh.e, id)

	if _, doc := sh.owner.get("/vms/new"); doc.Find(`[data-testid=snapshot-select]`).Length() != 0 {
		t.Error("the order form offers snapshots when there are none")
	}
	snap, _, err := sh.e.st.CreateSnapshot(ctx, store.Actor{Email: sh.email}, sh.tenant, id, "gold")
	if err != nil {
		t.Fatal(err)
	}
	settleVM(t, sh.e, id)
	if err := sh.e.st.SnapshotTaken(ctx, snap.ID, 3<<20, store.ConsistencyStopped); err != nil {
		t.Fatal(err)
	}
	_, doc := sh.owner.get("/vms/new")
	opt := doc.Find(`[data-testid=snapshot-select] option[value="` + snap.ID + `"]`)
	if opt.Length() != 1 || !strings.Contains(opt.Text(), "gold, of web-1") || !strings.Contains(opt.Text(), "20 GiB") {
		t.Errorf("snapshot option %q", opt.Text())
	}
	if _, has := doc.Find(`[data-testid=image-select]`).Attr("required"); has {
		t.Error("the image stays required when a snapshot may be chosen instead")
	}
	rival, _ := sh.signup("Rival", "owner@rival.example")
	if _, doc := rival.get("/vms/new"); doc.Find(`[data-testid=snapshot-select]`).Length() != 0 {
		t.Error("another tenant is offered the snapshot")
	}

	res, doc := sh.owner.post("/vms", url.Values{"name": {"copy"}, "plan": {"small"}, "image": {sh.image.ID}, "snapshot": {snap.ID}, "ssh_keys": {key}})
	if res.StatusCode != http.StatusUnprocessableEntity || doc.Find(`[data-testid=snapshot-select]`).AttrOr("aria-invalid", "") != "true" {
		t.Errorf("image and snapshot: %d", res.StatusCode)
	}
	res, _ = sh.owner.post("/vms", url.Values{"name": {"copy"}, "plan": {"small"}, "image": {""}, "snapshot": {snap.ID}, "ssh_keys": {key}})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/vms/") {
		t.Fatalf("order from a snapshot: %d %s", res.StatusCode, loc)
	}
	if vm := sh.vm(sh.tenant, strings.TrimPrefix(loc, "/vms/")); vm.SourceSnapshotID != snap.ID || vm.ImageID != sh.image.ID {
		t.Errorf("ordered %+v", vm.VM)
	}
}
