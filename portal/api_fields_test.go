package portal

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestUnknownFieldSuggestion: the names people try for image source, DNS
// record value and subnet ranges are refused with the field they meant.
func TestUnknownFieldSuggestion(t *testing.T) {
	e := newEnv(t)
	admin, customer := e.staff(store.RoleAdmin), e.customer("Fields", "fields@customer.example")
	tests := []struct {
		name, path, token, field, want string
		body                           map[string]any
	}{
		{"image source", "/api/v1/admin/images", admin, "source", `did you mean "source_url"?`,
			map[string]any{"name": "x", "os": "Debian", "version": "12", "source": "https://x.example/a.qcow2", "checksum": strings.Repeat("a", 64)}},
		{"dns data", "/api/v1/dns/records", customer, "data", `did you mean "value"?`,
			map[string]any{"name": "www", "type": "A", "data": "192.0.2.1"}},
		{"subnet start", "/api/v1/admin/subnets", admin, "start", `did you mean "range_start"?`,
			map[string]any{"name": "n", "cidr": "10.9.0.0/24", "start": "10.9.0.10", "range_end": "10.9.0.20"}},
		{"typo", "/api/v1/admin/subnets", admin, "cdir", `did you mean "cidr"?`,
			map[string]any{"name": "n", "cdir": "10.9.0.0/24"}},
		{"no guess", "/api/v1/dns/records", customer, "zzzzzzzz", "This request takes: name, priority, ttl, type, value",
			map[string]any{"name": "www", "type": "A", "value": "192.0.2.1", "zzzzzzzz": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, res := e.api("POST", tc.path, tc.token, tc.body)
			c, f := apiErr(res)
			msg, _ := obj(res["error"])["message"].(string)
			if code != http.StatusBadRequest || c != "bad_request" || f != tc.field || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %s field %q %q; want 400 bad_request field %q with %q", code, c, f, msg, tc.field, tc.want)
			}
		})
	}
}
