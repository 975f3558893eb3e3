package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestWebAdminMachineBootMode checks the machine forms' boot mode field:
// uefi is stored as the boot_mode parameter and shown selected (not among
// the parameter lines), bios is the default and stores nothing, and a bad
// mode, a mode for a driver without boot devices, or boot_mode typed as a
// parameter is refused at its field and changes nothing.
func TestWebAdminMachineBootMode(t *testing.T) {
	e := newEnv(t)
	admin := e.staffBrowser(store.RoleAdmin)
	ctx := context.Background()
	form := url.Values{"name": {"uefi-node"}, "macs": {"52:54:00:ee:00:01"}, "power_type": {"ipmi"},
		"power_params": {"address=10.0.0.9\nusername=admin"}, "boot_mode": {"uefi"}, "power_password": {bmcPassword}}
	with := func(changes map[string]string) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		for k, v := range changes {
			f.Set(k, v)
		}
		return f
	}
	refused := func(t *testing.T, path string, f url.Values, field, msg string) {
		t.Helper()
		res, doc := admin.post(path, f)
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status %d; want 422", res.StatusCode)
		}
		if doc.Find(`[data-testid="input-`+field+`"][aria-invalid="true"]`).Length() != 1 {
			t.Errorf("no inline error on %s", field)
		}
		if html, _ := doc.Html(); !strings.Contains(html, msg) {
			t.Errorf("page does not say %q", msg)
		}
	}

	t.Run("refused on enlist", func(t *testing.T) {
		e.t = t
		refused(t, "/admin/machines", with(map[string]string{"boot_mode": "legacy"}), "boot_mode", "choose bios or uefi")
		refused(t, "/admin/machines", with(map[string]string{"power_type": "wol", "power_params": "mac=52:54:00:ee:00:01"}),
			"boot_mode", "boot_mode applies to ipmi power only")
		refused(t, "/admin/machines", with(map[string]string{"power_params": "address=10.0.0.9\nboot_mode=uefi"}),
			"power_params", "choose the boot mode in its own field")
		if _, total, err := e.st.ListMachines(ctx, store.Page{}, ""); err != nil || total != 0 {
			t.Errorf("machines after refusals: %d, %v", total, err)
		}
	})
	e.t = t

	if res, _ := admin.post("/admin/machines", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("enlist: %d", res.StatusCode)
	}
	m, err := e.st.GetMachine(ctx, "uefi-node")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Params()[store.BootModeParam]; got != store.BootModeUEFI {
		t.Fatalf("boot_mode stored as %q; want uefi", got)
	}
	path := "/admin/machines/" + m.ID
	_, doc := admin.get(path)
	if doc.Find(`[data-testid="input-boot_mode"] option[value="uefi"][selected]`).Length() != 1 {
		t.Error("the settings form does not show uefi selected")
	}
	if text := doc.Find(`[data-testid="input-power_params"]`).Text(); strings.Contains(text, "boot_mode") || !strings.Contains(text, "address=10.0.0.9") {
		t.Errorf("parameter lines = %q; want the parameters without boot_mode", text)
	}

	t.Run("refused on update", func(t *testing.T) {
		e.t = t
		refused(t, path, with(map[string]string{"boot_mode": "efi"}), "boot_mode", "choose bios or uefi")
		d, err := e.st.GetMachine(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.PowerParams != m.PowerParams {
			t.Errorf("params after a refused update = %s; want %s", d.PowerParams, m.PowerParams)
		}
	})
	e.t = t

	if res, _ := admin.post(path, with(map[string]string{"boot_mode": "bios"})); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("update to bios: %d", res.StatusCode)
	}
	d, err := e.st.GetMachine(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Params()[store.BootModeParam]; ok {
		t.Errorf("params after choosing bios = %s; want no boot_mode (the default)", d.PowerParams)
	}
	_, doc = admin.get(path)
	if doc.Find(`[data-testid="input-boot_mode"] option[value="bios"][selected]`).Length() != 1 {
		t.Error("the settings form does not show bios selected")
	}
}
