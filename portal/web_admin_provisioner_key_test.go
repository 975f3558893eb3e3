package portal

import (
	"context"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestHostsPageShowsProvisionerKey(t *testing.T) {
	e := newEnv(t)
	b := e.staffBrowser("admin")
	if _, doc := b.get("/admin/hosts"); doc.Find(`[data-testid=admin-provisioner-key]`).Length() != 0 {
		t.Error("key box shown before the provisioner published a key")
	}
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample fibrix-provisioner"
	if err := e.st.SetSetting(context.Background(), store.SettingProvisionerSSHKey, key); err != nil {
		t.Fatal(err)
	}
	_, doc := b.get("/admin/hosts")
	if got := strings.TrimSpace(doc.Find(`[data-testid=admin-provisioner-key]`).Text()); got != key {
		t.Errorf("key shown as %q", got)
	}
}
