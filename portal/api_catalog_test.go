package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestAPIPlansAndImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.customer("Shop", "s@shop.example")
	tenantID, _ := e.account(tok)
	// 1 GiB RAM left: nano fits, small does not.
	if err := e.st.SetTenantQuota(ctx, store.Actor{Email: "test"}, tenantID, store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 1024, DiskGiB: 100, SSHKeys: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.UpdatePlan(ctx, store.Actor{Email: "test"}, "plan-large", store.PlanInput{Name: "large", VCPUs: 4, MemoryMiB: 8192, DiskGiB: 80}); err != nil {
		t.Fatal(err)
	}
	deb := e.image("debian-12")
	old := e.image("debian-10")
	in := store.ImageInput{Name: old.Name, OS: old.OS, Version: old.Version, SourceURL: old.SourceURL, Checksum: old.Checksum, Enabled: false}
	if _, err := e.st.UpdateImage(ctx, store.Actor{Email: "test"}, old.ID, in); err != nil {
		t.Fatal(err)
	}

	plans := map[string]map[string]any{}
	for _, p := range items(e.want(http.StatusOK, "GET", "/api/v1/plans", tok, nil)) {
		plans[obj(p)["name"].(string)] = obj(p)
	}
	if _, ok := plans["large"]; ok || len(plans) != 3 {
		t.Errorf("plans should be the 3 enabled ones: %v", plans)
	}
	if p := plans["nano"]; p["fits"] != true || p["reason"] != nil || p["id"] != "plan-nano" || p["memory_mib"] != float64(512) {
		t.Errorf("nano: %v", p)
	}
	if p := plans["small"]; p["fits"] != false || !strings.Contains(p["reason"].(string), "1 GiB left") {
		t.Errorf("small: %v", p)
	}
	for _, p := range items(e.want(http.StatusOK, "GET", "/api/v1/plans", e.staff(store.RoleAuditor), nil)) {
		if obj(p)["fits"] != true || obj(p)["reason"] != nil {
			t.Errorf("staff plan: %v", p)
		}
	}
	imgs := items(e.want(http.StatusOK, "GET", "/api/v1/images", tok, nil))
	if len(imgs) != 1 || obj(imgs[0])["id"] != deb.ID || obj(imgs[0])["os"] != "Debian" || obj(imgs[0])["version"] != "12" || obj(imgs[0])["source_url"] != nil {
		t.Errorf("images: %v", imgs)
	}
}
