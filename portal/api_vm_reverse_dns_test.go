package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// reverseVM orders a VM for owner and gives it an address in a subnet of
// its own, as the provisioner would; it returns the VM's id and address.
func reverseVM(t *testing.T, e *env, owner, name string) (string, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.st.GetImage(ctx, "debian-12"); err != nil {
		e.image("debian-12")
	}
	subnets, err := e.st.ListSubnets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(subnets) == 0 {
		if _, err := e.st.CreateSubnet(ctx, store.Actor{Email: "test"}, store.SubnetInput{Name: "lan", CIDR: "10.50.0.0/24",
			Gateway: "10.50.0.1", RangeStart: "10.50.0.10", RangeEnd: "10.50.0.99"}); err != nil {
			t.Fatal(err)
		}
	}
	id := e.order(owner, name, "nano", "debian-12", e.addKey(owner, name+"-key"))
	a, err := e.st.AllocateIP(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return id, a.IP.String()
}

func TestAPIReverseDNS(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Hosting", "h@hosting.example")
	id, ip := reverseVM(t, e, owner, "web")
	path := "/api/v1/vms/" + id + "/reverse-dns"
	e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, map[string]any{"name": "mail", "type": "A", "value": ip})

	want := func(res map[string]any, ptr string, def bool) {
		t.Helper()
		exp := map[string]any{"vm_id": id, "address": ip, "ptr": ptr, "default": def}
		if diff := cmp.Diff(exp, res); diff != "" {
			t.Errorf("reverse dns (-want +got):\n%s", diff)
		}
	}
	want(e.want(http.StatusOK, "GET", path, owner, nil), "web.hosting.cloud.internal", true)
	want(e.want(http.StatusOK, "PUT", path, owner, map[string]any{"ptr": "Mail.Hosting.cloud.internal."}), "mail.hosting.cloud.internal", false)
	want(e.want(http.StatusOK, "GET", path, owner, nil), "mail.hosting.cloud.internal", false)

	entries := items(e.want(http.StatusOK, "GET", "/api/v1/audit?action=dns.ptr.", owner, nil))
	if len(entries) != 1 || obj(entries[0])["action"] != "dns.ptr.set" || obj(entries[0])["target_id"] != id ||
		obj(entries[0])["target_name"] != ip+" PTR mail.hosting.cloud.internal" || obj(entries[0])["result"] != "success" {
		t.Errorf("audit: %v", entries)
	}

	want(e.want(http.StatusOK, "PUT", path, owner, map[string]any{"ptr": ""}), "web.hosting.cloud.internal", true)
	want(e.want(http.StatusOK, "GET", path, owner, nil), "web.hosting.cloud.internal", true)

	// A VM without an address has nothing to name yet.
	bare := e.order(owner, "bare", "nano", "debian-12", e.addKey(owner, "bare-key"))
	res := e.want(http.StatusOK, "GET", "/api/v1/vms/"+bare+"/reverse-dns", owner, nil)
	if diff := cmp.Diff(map[string]any{"vm_id": bare, "address": "", "ptr": "", "default": true}, res); diff != "" {
		t.Errorf("vm without an address (-want +got):\n%s", diff)
	}
	e.wantErr(http.StatusConflict, "invalid_state", "ptr", "PUT", "/api/v1/vms/"+bare+"/reverse-dns", owner, map[string]any{"ptr": "mail.hosting.cloud.internal"})
}

// TestAPIReverseDNSRefusals answers every bad name 422 naming the field and
// the problem, and changes nothing.
func TestAPIReverseDNSRefusals(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Hosting", "h@hosting.example")
	id, ip := reverseVM(t, e, owner, "web")
	_, other := reverseVM(t, e, owner, "db")
	path := "/api/v1/vms/" + id + "/reverse-dns"
	for _, r := range []map[string]any{
		{"name": "mail", "type": "A", "value": ip},
		{"name": "far", "type": "A", "value": "192.0.2.7"},
		{"name": "alias", "type": "CNAME", "value": "example.com"},
	} {
		e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, r)
	}
	e.want(http.StatusOK, "PUT", path, owner, map[string]any{"ptr": "mail.hosting.cloud.internal"})
	serial := func() uint32 {
		z, err := e.st.DNSSnapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return z.Serial
	}
	before := serial()

	for _, tc := range []struct {
		name, code, field string
		status            int
		body              any
		says              string
	}{
		{"not a host name", "invalid", "ptr", 422, map[string]any{"ptr": "no spaces.hosting.cloud.internal"}, "must be a host name"},
		{"label too long", "invalid", "ptr", 422, map[string]any{"ptr": strings.Repeat("a", 64) + ".hosting.cloud.internal"}, "at most 63 characters"},
		{"name too long", "invalid", "ptr", 422, map[string]any{"ptr": strings.Repeat("abcdefghi.", 26) + "hosting.cloud.internal"}, "at most 253"},
		{"one label", "invalid", "ptr", 422, map[string]any{"ptr": "mail"}, "give the full name, e.g. mail.hosting.cloud.internal"},
		{"outside our zone", "invalid", "ptr", 422, map[string]any{"ptr": "mail.example.com"}, "not in your zone hosting.cloud.internal"},
		{"unknown name", "invalid", "ptr", 422, map[string]any{"ptr": "nope.hosting.cloud.internal"}, "nope.hosting.cloud.internal does not resolve to " + ip},
		{"other address", "invalid", "ptr", 422, map[string]any{"ptr": "far.hosting.cloud.internal"}, "resolves to 192.0.2.7, not to web's address " + ip},
		{"another vm's name", "invalid", "ptr", 422, map[string]any{"ptr": "db.hosting.cloud.internal"}, "resolves to " + other},
		{"cname", "invalid", "ptr", 422, map[string]any{"ptr": "alias.hosting.cloud.internal"}, "is a CNAME"},
		{"ptr missing", "invalid", "ptr", 422, map[string]any{}, "give ptr"},
		{"ptr null", "invalid", "ptr", 422, map[string]any{"ptr": nil}, "give ptr"},
		{"ptr a number", "bad_request", "ptr", 400, map[string]any{"ptr": 5}, "ptr must be"},
		{"unknown field", "bad_request", "name", 400, map[string]any{"ptr": "", "name": "x"}, "name"},
		{"not json", "bad_request", "", 400, "ptr=x", "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, body := e.api("PUT", path, owner, tc.body)
			c, f := apiErr(body)
			msg, _ := obj(body["error"])["message"].(string)
			if code != tc.status || c != tc.code || f != tc.field || !strings.Contains(msg, tc.says) {
				t.Errorf("%d %s field %q %q, want %d %s field %q saying %q", code, c, f, msg, tc.status, tc.code, tc.field, tc.says)
			}
			if got := e.want(http.StatusOK, "GET", path, owner, nil); got["ptr"] != "mail.hosting.cloud.internal" {
				t.Errorf("a refusal changed the name: %v", got)
			}
			if s := serial(); s != before {
				t.Errorf("a refusal moved the zone serial: %d → %d", before, s)
			}
		})
	}
}

// TestAPIReverseDNSAccess lets readers read and only writers of the VM's
// own tenant change; another tenant's VM is not found.
func TestAPIReverseDNSAccess(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Hosting", "h@hosting.example")
	rival := e.customer("Rival", "r@rival.example")
	id, ip := reverseVM(t, e, owner, "web")
	rivalVM, _ := reverseVM(t, e, rival, "web")
	e.want(http.StatusCreated, "POST", "/api/v1/dns/records", owner, map[string]any{"name": "mail", "type": "A", "value": ip})
	path := "/api/v1/vms/" + id + "/reverse-dns"
	readonly := e.member(owner, "ro@hosting.example", store.RoleReadOnly)
	member := e.member(owner, "m@hosting.example", store.RoleMember)
	readToken := e.apiToken(owner, store.ScopeRead)
	set := map[string]any{"ptr": "mail.hosting.cloud.internal"}

	for _, tc := range []struct {
		name, token       string
		getStatus, status int
		code              string
	}{
		{"readonly member", readonly, 200, http.StatusForbidden, "forbidden"},
		{"read-scope token", readToken, 200, http.StatusForbidden, "forbidden"},
		{"another tenant", rival, 404, http.StatusNotFound, "not_found"},
		{"staff", e.staff(store.RoleAdmin), 403, http.StatusForbidden, "forbidden"},
		{"unauthenticated", "", 401, http.StatusUnauthorized, "unauthenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			if code, body := e.api("GET", path, tc.token, nil); code != tc.getStatus {
				t.Errorf("get: %d %v", code, body)
			}
			e.wantErr(tc.status, tc.code, "", "PUT", path, tc.token, set)
			e.wantErr(tc.status, tc.code, "", "PUT", path, tc.token, map[string]any{"ptr": ""})
			if got := e.want(http.StatusOK, "GET", path, owner, nil); got["default"] != true {
				t.Errorf("refused request changed the name: %v", got)
			}
		})
	}
	// The rival cannot name its own VM after our record either.
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "ptr", "PUT", "/api/v1/vms/"+rivalVM+"/reverse-dns", rival, set)
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/vms/nope/reverse-dns", owner, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "PUT", "/api/v1/vms/nope/reverse-dns", owner, set)

	// A member with write access may.
	if got := e.want(http.StatusOK, "PUT", path, member, set); got["ptr"] != "mail.hosting.cloud.internal" {
		t.Errorf("member set: %v", got)
	}
}
