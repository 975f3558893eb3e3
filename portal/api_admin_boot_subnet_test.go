package portal

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// onBothDatabases runs f on a portal over SQLite and over PostgreSQL.
func onBothDatabases(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { f(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, newEnvOn(t, pgtest.DSN(t))) })
}

// rackSubnet is a boot subnet as staff would send it.
func rackSubnet() map[string]any {
	return map[string]any{"name": "Rack-1", "cidr": "10.213.0.0/24", "gateway": "10.213.0.1", "dns_servers": []string{"10.213.0.1", "9.9.9.9"},
		"range_start": "10.213.0.100", "range_end": "10.213.0.109", "lease_seconds": 600}
}

// with returns a copy of m with the given keys replaced.
func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestAPIAdminBootSubnets(t *testing.T) {
	onBothDatabases(t, testAPIAdminBootSubnets)
}

func testAPIAdminBootSubnets(t *testing.T, e *env) {
	ctx := context.Background()
	admin := e.staff(store.RoleAdmin)
	operator := e.staff(store.RoleOperator)
	auditor := e.staff(store.RoleAuditor)
	cust := e.customer("Buyer", "b@buyer.example")
	const base = "/api/v1/admin/boot-subnets"

	if l := e.want(http.StatusOK, "GET", base, auditor, nil); len(items(l)) != 0 {
		t.Fatalf("boot subnets before any: %v", l)
	}
	sn := e.want(http.StatusCreated, "POST", base, admin, rackSubnet())
	id := sn["id"].(string)
	if sn["name"] != "rack-1" || sn["cidr"] != "10.213.0.0/24" || sn["range_start"] != "10.213.0.100" || sn["range_end"] != "10.213.0.109" ||
		sn["lease_seconds"] != float64(600) || sn["size"] != float64(10) || sn["used"] != float64(0) || sn["free"] != float64(10) ||
		sn["reservation_count"] != float64(0) || jsonText(sn["dns_servers"]) != `["10.213.0.1","9.9.9.9"]` {
		t.Errorf("created: %v", sn)
	}
	mac := "52:54:00:aa:00:01"
	res := e.want(http.StatusCreated, "POST", base+"/"+id+"/reservations", admin, map[string]any{"mac": "52-54-00-AA-00-01", "ip": "10.213.0.20", "hostname": "Node-1"})
	if res["mac"] != mac || res["ip"] != "10.213.0.20" || res["hostname"] != "node-1" || res["subnet_id"] != id {
		t.Errorf("reservation: %v", res)
	}
	// A second, reservations-only subnet, with a reservation of its own.
	other := e.want(http.StatusCreated, "POST", base, admin, map[string]any{"name": "rack-2", "cidr": "10.214.0.0/24"})
	if other["range_start"] != "" || other["size"] != float64(0) || other["lease_seconds"] != float64(3600) {
		t.Errorf("reservations-only subnet: %v", other)
	}
	otherID := other["id"].(string)
	e.want(http.StatusCreated, "POST", base+"/rack-2/reservations", admin, map[string]any{"mac": "52:54:00:cc:00:01", "ip": "10.214.0.9"})

	reserve := func(mac, ip, host string) map[string]any {
		return map[string]any{"mac": mac, "ip": ip, "hostname": host}
	}
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, field, msg          string
	}{
		{"bad cidr", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/33"), 422, "invalid", "cidr", "CIDR"},
		{"cidr not the network", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.1/24"), 422, "invalid", "cidr", "10.215.0.0/24"},
		{"range outside subnet", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24", "gateway", "", "range_start", "10.213.0.100", "range_end", "10.215.0.109"), 422, "invalid", "range_start", "10.215.0.0/24"},
		{"range end outside subnet", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24", "gateway", "", "range_start", "10.215.0.100", "range_end", "10.216.0.1"), 422, "invalid", "range_end", ""},
		{"range ends before it starts", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24", "gateway", "", "range_start", "10.215.0.100", "range_end", "10.215.0.90"), 422, "invalid", "range_end", ""},
		{"gateway outside", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24", "gateway", "10.213.0.1", "range_start", "", "range_end", ""), 422, "invalid", "gateway", ""},
		{"bad dns", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24", "gateway", "", "range_start", "", "range_end", "", "dns_servers", []string{"dns.example"}), 422, "invalid", "dns_servers", ""},
		{"lease too short", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24", "gateway", "", "range_start", "", "range_end", "", "lease_seconds", 5), 422, "invalid", "lease_seconds", ""},
		{"lease not a number", "POST", "", admin, with(rackSubnet(), "lease_seconds", "1h"), 400, "bad_request", "lease_seconds", ""},
		{"bad name", "POST", "", admin, with(rackSubnet(), "name", "Rack 1!", "cidr", "10.215.0.0/24"), 422, "invalid", "name", ""},
		{"duplicate name", "POST", "", admin, with(rackSubnet(), "cidr", "10.215.0.0/24", "gateway", "", "range_start", "", "range_end", ""), 409, "conflict", "name", ""},
		{"overlap", "POST", "", admin, with(rackSubnet(), "name", "x", "cidr", "10.213.0.0/16", "gateway", "", "range_start", "", "range_end", ""), 409, "conflict", "cidr", "rack-1"},
		{"unknown field", "POST", "", admin, with(rackSubnet(), "pool", "x"), 400, "bad_request", "pool", ""},
		{"operator may not create", "POST", "", operator, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24"), 403, "forbidden", "", ""},
		{"auditor may not create", "POST", "", auditor, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24"), 403, "forbidden", "", ""},
		{"operator may not delete", "DELETE", "/" + id, operator, nil, 403, "forbidden", "", ""},
		{"auditor may not delete", "DELETE", "/" + id, auditor, nil, 403, "forbidden", "", ""},
		{"get unknown", "GET", "/nope", admin, nil, 404, "not_found", "", ""},
		{"delete unknown", "DELETE", "/nope", admin, nil, 404, "not_found", "", ""},

		{"reservation in dynamic range", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00:02", "10.213.0.105", ""), 422, "invalid", "ip", "dynamic range"},
		{"reservation outside subnet", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00:02", "10.214.0.5", ""), 422, "invalid", "ip", "10.213.0.0/24"},
		{"reservation of the gateway", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00:02", "10.213.0.1", ""), 422, "invalid", "ip", "gateway"},
		{"reservation of the broadcast", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00:02", "10.213.0.255", ""), 422, "invalid", "ip", ""},
		{"bad mac", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00", "10.213.0.21", ""), 422, "invalid", "mac", ""},
		{"bad hostname", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00:02", "10.213.0.21", "node_1"), 422, "invalid", "hostname", ""},
		{"duplicate mac", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:AA:00:01", "10.213.0.21", ""), 409, "conflict", "mac", "10.213.0.20"},
		{"mac reserved in another subnet", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:cc:00:01", "10.213.0.21", ""), 409, "conflict", "mac", ""},
		{"duplicate address", "POST", "/" + id + "/reservations", admin, reserve("52:54:00:aa:00:02", "10.213.0.20", ""), 409, "conflict", "ip", ""},
		{"reservation needs a body", "POST", "/" + id + "/reservations", admin, nil, 415, "unsupported_media_type", "", ""},
		{"reservation in unknown subnet", "POST", "/nope/reservations", admin, reserve("52:54:00:aa:00:02", "10.213.0.21", ""), 404, "not_found", "", ""},
		{"reservations of unknown subnet", "GET", "/nope/reservations", admin, nil, 404, "not_found", "", ""},
		{"operator may not reserve", "POST", "/" + id + "/reservations", operator, reserve("52:54:00:aa:00:02", "10.213.0.21", ""), 403, "forbidden", "", ""},
		{"auditor may not reserve", "POST", "/" + id + "/reservations", auditor, reserve("52:54:00:aa:00:02", "10.213.0.21", ""), 403, "forbidden", "", ""},
		{"operator may not unreserve", "DELETE", "/" + id + "/reservations/" + mac, operator, nil, 403, "forbidden", "", ""},
		{"unreserve a bad mac", "DELETE", "/" + id + "/reservations/zz", admin, nil, 422, "invalid", "mac", ""},
		{"unreserve an unknown mac", "DELETE", "/" + id + "/reservations/52:54:00:aa:00:09", admin, nil, 404, "not_found", "", ""},
		{"unreserve another subnet's mac", "DELETE", "/" + id + "/reservations/52:54:00:cc:00:01", admin, nil, 404, "not_found", "", ""},
		{"unreserve in unknown subnet", "DELETE", "/nope/reservations/" + mac, admin, nil, 404, "not_found", "", ""},
		{"leases of unknown subnet", "GET", "/nope/leases", admin, nil, 404, "not_found", "", ""},
		{"leases in a bad state", "GET", "/" + id + "/leases?state=happy", admin, nil, 400, "bad_request", "state", ""},
		{"leases bad page", "GET", "/" + id + "/leases?per_page=0", admin, nil, 400, "bad_request", "per_page", ""},

		{"customer list", "GET", "", cust, nil, 404, "not_found", "", ""},
		{"customer create", "POST", "", cust, with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24"), 404, "not_found", "", ""},
		{"customer get", "GET", "/" + id, cust, nil, 404, "not_found", "", ""},
		{"customer delete", "DELETE", "/" + id, cust, nil, 404, "not_found", "", ""},
		{"customer reservations", "GET", "/" + id + "/reservations", cust, nil, 404, "not_found", "", ""},
		{"customer reserve", "POST", "/" + id + "/reservations", cust, reserve("52:54:00:aa:00:02", "10.213.0.21", ""), 404, "not_found", "", ""},
		{"customer unreserve", "DELETE", "/" + id + "/reservations/" + mac, cust, nil, 404, "not_found", "", ""},
		{"customer leases", "GET", "/" + id + "/leases", cust, nil, 404, "not_found", "", ""},
		{"unauthenticated list", "GET", "", "", nil, 401, "unauthenticated", "", ""},
		{"unauthenticated create", "POST", "", "", with(rackSubnet(), "name", "x", "cidr", "10.215.0.0/24"), 401, "unauthenticated", "", ""},
		{"unauthenticated get", "GET", "/" + id, "", nil, 401, "unauthenticated", "", ""},
		{"unauthenticated delete", "DELETE", "/" + id, "", nil, 401, "unauthenticated", "", ""},
		{"unauthenticated reservations", "GET", "/" + id + "/reservations", "", nil, 401, "unauthenticated", "", ""},
		{"unauthenticated reserve", "POST", "/" + id + "/reservations", "", reserve("52:54:00:aa:00:02", "10.213.0.21", ""), 401, "unauthenticated", "", ""},
		{"unauthenticated unreserve", "DELETE", "/" + id + "/reservations/" + mac, "", nil, 401, "unauthenticated", "", ""},
		{"unauthenticated leases", "GET", "/" + id + "/leases", "", nil, 401, "unauthenticated", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, body := e.api(tc.method, base+tc.path, tc.token, tc.body)
			c, f := apiErr(body)
			if code != tc.status || c != tc.code || f != tc.field || !strings.Contains(jsonText(body), tc.msg) {
				t.Errorf("%d %s field %q, want %d %s field %q mentioning %q: %v", code, c, f, tc.status, tc.code, tc.field, tc.msg, body)
			}
		})
	}
	e.t = t

	// The refusals changed nothing.
	l := e.want(http.StatusOK, "GET", base, auditor, nil)
	if len(items(l)) != 2 || obj(items(l)[0])["name"] != "rack-1" || obj(items(l)[1])["name"] != "rack-2" {
		t.Fatalf("boot subnets after refusals: %v", l)
	}
	if got, _ := e.st.ListReservations(ctx, id); len(got) != 1 || got[0].MAC != mac {
		t.Errorf("reservations after refusals: %+v", got)
	}
	if got, _ := e.st.ListReservations(ctx, otherID); len(got) != 1 {
		t.Errorf("rack-2 reservations after refusals: %+v", got)
	}

	// Detail by id or name, with the reservations.
	for _, ref := range []string{id, "rack-1"} {
		d := e.want(http.StatusOK, "GET", base+"/"+ref, auditor, nil)
		rs, _ := d["reservations"].([]any)
		if d["id"] != id || d["reservation_count"] != float64(1) || len(rs) != 1 || obj(rs[0])["mac"] != mac || obj(rs[0])["hostname"] != "node-1" {
			t.Errorf("detail %s: %v", ref, d)
		}
	}
	if rl := e.want(http.StatusOK, "GET", base+"/"+id+"/reservations", operator, nil); len(items(rl)) != 1 || obj(items(rl)[0])["ip"] != "10.213.0.20" {
		t.Errorf("reservations: %v", rl)
	}

	// Leases as the DHCP server records them: the reserved MAC, two in the
	// dynamic range (one run out), one declined.
	now := time.Now()
	for _, l := range []struct {
		mac string
		at  time.Time
	}{{mac, now}, {"52:54:00:bb:00:01", now}, {"52:54:00:bb:00:02", now.Add(-2 * time.Hour)}, {"52:54:00:bb:00:03", now}} {
		if _, err := e.st.Lease(ctx, id, l.mac, netip.Addr{}, l.at); err != nil {
			t.Fatalf("lease %s: %v", l.mac, err)
		}
	}
	if err := e.st.Decline(ctx, id, "52:54:00:bb:00:03", netip.MustParseAddr("10.213.0.102"), now); err != nil {
		t.Fatal(err)
	}
	ll := e.want(http.StatusOK, "GET", base+"/"+id+"/leases", auditor, nil)
	type leaseRow struct {
		ip, mac, state string
		reserved       bool
	}
	var got []leaseRow
	for _, it := range items(ll) {
		o := obj(it)
		got = append(got, leaseRow{o["ip"].(string), o["mac"].(string), o["state"].(string), o["reserved"].(bool)})
		if exp, err := time.Parse(time.RFC3339, o["expires_at"].(string)); err != nil || exp.IsZero() {
			t.Errorf("lease expiry %v: %v", o["expires_at"], err)
		}
	}
	want := []leaseRow{
		{"10.213.0.20", mac, "active", true},
		{"10.213.0.100", "52:54:00:bb:00:01", "active", false},
		{"10.213.0.101", "52:54:00:bb:00:02", "expired", false},
		{"10.213.0.102", "", "declined", false},
	}
	if !slices.Equal(got, want) || ll["total"] != float64(4) {
		t.Errorf("leases %+v, want %+v (%v)", got, want, ll)
	}
	if a := e.want(http.StatusOK, "GET", base+"/"+id+"/leases?state=active", auditor, nil); a["total"] != float64(2) || len(items(a)) != 2 {
		t.Errorf("active leases: %v", a)
	}
	if p := e.want(http.StatusOK, "GET", base+"/"+id+"/leases?per_page=3&page=2", auditor, nil); p["total"] != float64(4) || p["page"] != float64(2) ||
		len(items(p)) != 1 || obj(items(p)[0])["ip"] != "10.213.0.102" {
		t.Errorf("second page of leases: %v", p)
	}
	// Leased now in the dynamic range: .100 and the declined .102.
	if d := e.want(http.StatusOK, "GET", base+"/"+id, auditor, nil); d["used"] != float64(2) || d["free"] != float64(8) {
		t.Errorf("usage with leases: %v", d)
	}

	// Removing the reservation keeps its lease; the subnet's delete takes the rest.
	if code, body := e.api("DELETE", base+"/"+id+"/reservations/"+mac, admin, nil); code != http.StatusNoContent {
		t.Fatalf("unreserve: %d %v", code, body)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "DELETE", base+"/"+id+"/reservations/"+mac, admin, nil)
	if got, _ := e.st.ListLeases(ctx, id); len(got) != 4 {
		t.Errorf("leases after unreserve: %d", len(got))
	}
	if code, body := e.api("DELETE", base+"/rack-1", admin, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, body)
	}
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", base+"/"+id, admin, nil)
	if got, _ := e.st.ListLeases(ctx, id); len(got) != 0 {
		t.Errorf("leases after delete: %d", len(got))
	}
	if l := e.want(http.StatusOK, "GET", base, admin, nil); len(items(l)) != 1 || obj(items(l)[0])["id"] != otherID {
		t.Errorf("boot subnets after delete: %v", l)
	}

	// The audit log has every change, and the refusals that reached the store.
	audit := func(action string) []map[string]any {
		var out []map[string]any
		for _, it := range items(e.want(http.StatusOK, "GET", "/api/v1/admin/audit?per_page=100&action="+action, auditor, nil)) {
			out = append(out, obj(it))
		}
		return out
	}
	has := func(entries []map[string]any, action, result, target, detail string) bool {
		for _, a := range entries {
			if a["action"] == action && a["result"] == result && a["target_name"] == target &&
				strings.Contains(a["actor_email"].(string), "admin-") && strings.Contains(a["detail"].(string), detail) {
				return true
			}
		}
		return false
	}
	bs, rv := audit("boot_subnet."), audit("dhcp_reservation.")
	for _, w := range []struct {
		entries                        []map[string]any
		action, result, target, detail string
	}{
		{bs, "boot_subnet.create", "success", "rack-1", ""},
		{bs, "boot_subnet.create", "success", "rack-2", ""},
		{bs, "boot_subnet.create", "failure", "x", "overlaps boot subnet rack-1"},
		{bs, "boot_subnet.delete", "success", "rack-1", ""},
		{rv, "dhcp_reservation.create", "success", mac, ""},
		{rv, "dhcp_reservation.create", "failure", "52:54:00:aa:00:02", "dynamic range"},
		{rv, "dhcp_reservation.delete", "success", mac, ""},
	} {
		if !has(w.entries, w.action, w.result, w.target, w.detail) {
			t.Errorf("no audit entry %s %s %s %q in %v", w.action, w.result, w.target, w.detail, w.entries)
		}
	}
	for _, a := range append(bs, rv...) {
		if email := a["actor_email"].(string); !strings.HasPrefix(email, "admin-") {
			t.Errorf("audit entry by %s: a refused role reached the store: %v", email, a)
		}
	}
}

// TestOpenAPIBootSubnetResponses checks that the boot subnet answers carry
// exactly the documented properties.
func TestOpenAPIBootSubnetResponses(t *testing.T) {
	e := newEnv(t)
	doc := fetchOpenAPI(t, e)
	admin := e.staff(store.RoleAdmin)
	sn := e.want(http.StatusCreated, "POST", "/api/v1/admin/boot-subnets", admin, rackSubnet())
	id := sn["id"].(string)
	if _, err := e.st.Lease(context.Background(), id, "52:54:00:bb:00:01", netip.Addr{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	reservation := map[string]any{"mac": "52:54:00:aa:00:01", "ip": "10.213.0.20", "hostname": "node-1"}
	for _, tc := range []struct {
		name, method, path, docPath, status string
		body                                any
		listItem                            bool
	}{
		{"create", "POST", "/admin/boot-subnets", "/admin/boot-subnets", "201", with(rackSubnet(), "name", "rack-2", "cidr", "10.214.0.0/24", "gateway", "", "range_start", "", "range_end", ""), false},
		{"list item", "GET", "/admin/boot-subnets", "/admin/boot-subnets", "200", nil, true},
		{"list", "GET", "/admin/boot-subnets", "/admin/boot-subnets", "200", nil, false},
		{"reservation create", "POST", "/admin/boot-subnets/" + id + "/reservations", "/admin/boot-subnets/{id}/reservations", "201", reservation, false},
		{"reservation item", "GET", "/admin/boot-subnets/" + id + "/reservations", "/admin/boot-subnets/{id}/reservations", "200", nil, true},
		{"detail", "GET", "/admin/boot-subnets/" + id, "/admin/boot-subnets/{id}", "200", nil, false},
		{"lease list", "GET", "/admin/boot-subnets/" + id + "/leases", "/admin/boot-subnets/{id}/leases", "200", nil, false},
		{"lease item", "GET", "/admin/boot-subnets/" + id + "/leases", "/admin/boot-subnets/{id}/leases", "200", nil, true},
		{"invalid", "POST", "/admin/boot-subnets/" + id + "/reservations", "/admin/boot-subnets/{id}/reservations", "422", with(reservation, "ip", "10.213.0.100"), false},
		{"not found", "GET", "/admin/boot-subnets/nope", "/admin/boot-subnets/{id}", "404", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			code, body := e.api(tc.method, apiPrefix+tc.path, admin, tc.body)
			if itoa(code) != tc.status {
				t.Fatalf("status %d, want %s: %v", code, tc.status, body)
			}
			schema := responseSchema(t, doc, tc.method, tc.docPath, tc.status)
			if tc.listItem {
				if len(items(body)) == 0 {
					t.Fatalf("empty list: %v", body)
				}
				body = obj(items(body)[0])
				schema = resolve(doc, obj(obj(obj(schema["properties"])["items"])["items"]))
			}
			if got, want := keysOf(body), propertyNames(schema); !slices.Equal(got, want) {
				t.Errorf("keys %v, documented %v", got, want)
			}
			if tc.name == "detail" {
				rs, _ := body["reservations"].([]any)
				item := resolve(doc, obj(obj(obj(schema["properties"])["reservations"])["items"]))
				if len(rs) != 1 {
					t.Fatalf("reservations: %v", body)
				}
				if got, want := keysOf(obj(rs[0])), propertyNames(item); !slices.Equal(got, want) {
					t.Errorf("reservation keys %v, documented %v", got, want)
				}
			}
		})
	}
}
