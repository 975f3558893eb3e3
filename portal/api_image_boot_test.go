package portal

import (
	"net/http"
	"strings"
	"testing"
)

func TestImageDirectBootFields(t *testing.T) {
	e := newEnv(t)
	admin := e.staff("admin")
	sum := "sha256:" + strings.Repeat("cd", 32)
	base := func() map[string]any {
		return map[string]any{"name": "mini", "os": "Debian", "version": "12",
			"source_url": "file:///srv/images/mini.qcow2", "checksum": sum}
	}
	for name, tc := range map[string]struct {
		extra map[string]any
		field string
	}{
		"kernel without initrd": {map[string]any{"kernel_url": "file:///srv/vmlinuz", "kernel_checksum": sum}, "kernel_url"},
		"bad kernel checksum": {map[string]any{"kernel_url": "file:///srv/vmlinuz", "kernel_checksum": "abc",
			"initrd_url": "file:///srv/initrd", "initrd_checksum": sum}, "kernel_checksum"},
		"bad initrd address": {map[string]any{"kernel_url": "file:///srv/vmlinuz", "kernel_checksum": sum,
			"initrd_url": "gopher://x", "initrd_checksum": sum}, "initrd_url"},
	} {
		body := base()
		for k, v := range tc.extra {
			body[k] = v
		}
		code, res := e.api("POST", "/api/v1/admin/images", admin, body)
		if code != http.StatusUnprocessableEntity || res["error"].(map[string]any)["field"] != tc.field {
			t.Errorf("%s: %d %v", name, code, res)
		}
	}
	body := base()
	body["kernel_url"], body["kernel_checksum"] = "file:///srv/vmlinuz", strings.ToUpper(sum[7:])
	body["initrd_url"], body["initrd_checksum"] = "file:///srv/initrd.img", sum
	code, res := e.api("POST", "/api/v1/admin/images", admin, body)
	if code != http.StatusCreated || res["kernel_url"] != "file:///srv/vmlinuz" || res["kernel_checksum"] != sum {
		t.Fatalf("create with direct boot: %d %v", code, res)
	}
}
