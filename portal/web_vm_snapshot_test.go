package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestVMDetailSnapshots shows the snapshots section on the VM page: the
// empty state, the take form with refusals at the field, the list with
// size and state, restore and delete behind a second click, and no forms
// for readers; other tenants are kept out.
func TestVMDetailSnapshots(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	key := sh.addKey(sh.owner, sh.tenant, "laptop")
	id := sh.orderOK(sh.owner, "web-1", "small", key)
	settleVM(t, sh.e, id)
	page := "/vms/" + id

	_, doc := sh.owner.get(page)
	if doc.Find(`[data-testid=vm-snapshots-empty]`).Length() != 1 || doc.Find(`[data-testid=vm-snapshot-form]`).Length() != 1 {
		t.Fatalf("snapshots section of a new VM: %q", doc.Find(`[data-testid=vm-snapshots]`).Text())
	}
	res, doc := sh.owner.post(page+"/snapshots", url.Values{"name": {"no/slashes"}})
	field := doc.Find(`[data-testid=vm-snapshot-form] input[name=name]`)
	if res.StatusCode != http.StatusUnprocessableEntity || field.AttrOr("aria-invalid", "") != "true" || field.AttrOr("value", "") != "no/slashes" {
		t.Errorf("bad name: %d, field %q", res.StatusCode, field.AttrOr("value", "?"))
	}
	if snaps, _ := sh.e.st.ListSnapshots(ctx, sh.tenant, id); len(snaps) != 0 {
		t.Fatalf("a refusal made %v", snaps)
	}

	if res, _ := sh.owner.post(page+"/snapshots", url.Values{"name": {"nightly"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("take: %d", res.StatusCode)
	}
	snaps, err := sh.e.st.ListSnapshots(ctx, sh.tenant, id)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v %v", snaps, err)
	}
	sid := snaps[0].ID
	settleVM(t, sh.e, id)
	if err := sh.e.st.SnapshotTaken(ctx, sid, 812<<20, store.ConsistencyFrozen); err != nil {
		t.Fatal(err)
	}
	_, doc = sh.owner.get(page)
	row := doc.Find(`[data-testid=vm-snapshot-row]`)
	if row.Length() != 1 || row.Find(`[data-testid=vm-snapshot-name]`).Text() != "nightly" ||
		row.Find(`[data-testid=vm-snapshot-size]`).Text() != "812 MiB" || strings.TrimSpace(row.Find(`[data-testid=vm-snapshot-state]`).Text()) != "ready" {
		t.Errorf("snapshot row %q", row.Text())
	}
	if c := row.Find(`[data-testid=vm-snapshot-consistency]`).Text(); c != "while running, file systems frozen by the guest agent" {
		t.Errorf("snapshot consistency shown as %q", c)
	}
	if row.Find(`details[data-testid=vm-snapshot-restore] button`).Length() != 1 || row.Find(`details[data-testid=vm-snapshot-delete] button`).Length() != 1 {
		t.Error("restore and delete are not behind a second click")
	}
	if q := doc.Find(`[data-testid=vm-snapshots-quota]`).Text(); !strings.Contains(q, "1 of 5 snapshots") {
		t.Errorf("quota line %q", q)
	}

	// Readers see the list without forms; other tenants get nothing.
	rival, _ := sh.signup("Rival", "r@rival.example")
	ro := sh.join(sh.inviteLink(sh.owner, "ro@acme.example", store.RoleReadOnly))
	_, doc = ro.get(page)
	if doc.Find(`[data-testid=vm-snapshot-row]`).Length() != 1 || doc.Find(`[data-testid=vm-snapshot-form], [data-testid=vm-snapshot-restore], [data-testid=vm-snapshot-delete]`).Length() != 0 {
		t.Error("a read-only member sees snapshot forms, or no snapshots")
	}
	for _, tc := range []struct {
		name   string
		b      *browser
		status int
	}{{"another tenant", rival, http.StatusNotFound}, {"read-only member", ro, http.StatusForbidden}} {
		for _, p := range []string{"/snapshots", "/snapshots/" + sid + "/restore", "/snapshots/" + sid + "/delete"} {
			if res, _ := tc.b.post(page+p, url.Values{"name": {"x"}}); res.StatusCode != tc.status {
				t.Errorf("%s %s: %d, want %d", tc.name, p, res.StatusCode, tc.status)
			}
		}
	}

	if res, _ := sh.owner.post(page+"/snapshots/"+sid+"/restore", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d", res.StatusCode)
	}
	// One operation at a time: the delete is refused while the restore is queued.
	res, doc = sh.owner.post(page+"/snapshots/"+sid+"/delete", nil)
	if res.StatusCode != http.StatusConflict || !strings.Contains(doc.Text(), "already queued") {
		t.Errorf("delete during a restore: %d", res.StatusCode)
	}
	settleVM(t, sh.e, id)
	if err := sh.e.st.SnapshotSettled(ctx, sid, ""); err != nil {
		t.Fatal(err)
	}
	if res, _ := sh.owner.post(page+"/snapshots/"+sid+"/delete", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if got, _ := sh.e.st.GetSnapshot(ctx, sh.tenant, id, sid); got.State != store.SnapshotDeleting {
		t.Errorf("snapshot after delete: %s", got.State)
	}
}
