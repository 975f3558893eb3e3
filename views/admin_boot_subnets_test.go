package views

import (
	"strings"
	"testing"
)

func adminBootSubnetSample() AdminBootSubnetRow {
	return AdminBootSubnetRow{ID: "bs/1", Name: "rack-1", CIDR: "10.213.0.0/24", Gateway: "10.213.0.1", DNSServers: "10.213.0.1, 9.9.9.9",
		RangeStart: "10.213.0.100", RangeEnd: "10.213.0.109", LeaseSeconds: 600, Size: 10, Used: 3, Free: 7, Reservations: 1}
}

func adminBootSubnetDetailSample(role string) AdminBootSubnetView {
	return AdminBootSubnetView{Page: adminTestPage(role, "admin-boot-subnets"), Subnet: adminBootSubnetSample(),
		Reservations: []AdminReservationRow{{MAC: "52:54:00:aa:00:01", IP: "10.213.0.20", Hostname: "node-1", CreatedAt: adminTestTime}},
		Leases: []AdminLeaseRow{
			{IP: "10.213.0.20", MAC: "52:54:00:aa:00:01", Hostname: "node-1", Reserved: true, ExpiresAt: adminTestTime},
			{IP: "10.213.0.102", Declined: true, ExpiresAt: adminTestTime},
		},
		LeasePager: Pager{Page: 1, PerPage: 25, Total: 2, Path: "/admin/boot-subnets/bs%2F1"}}
}

func TestAdminBootSubnetsByRole(t *testing.T) {
	for _, role := range adminTestRoles {
		t.Run(role, func(t *testing.T) {
			doc := adminRender(t, AdminBootSubnets(AdminBootSubnetsView{Page: adminTestPage(role, "admin-boot-subnets"),
				Subnets: []AdminBootSubnetRow{adminBootSubnetSample(), {ID: "2", Name: "oob", CIDR: "10.9.0.0/24", LeaseSeconds: 3600}}}))
			rows := adminMustHave(t, doc, tid("admin-boot-subnet-row"))
			if rows.Length() != 2 || rows.First().Find(tid("admin-boot-subnet-link")).AttrOr("href", "") != "/admin/boot-subnets/bs%2F1" {
				t.Errorf("rows: %d", rows.Length())
			}
			if got := rows.Last().Find(tid("boot-subnet-no-range")).Text(); got != "reservations only" {
				t.Errorf("reservations-only subnet shows %q", got)
			}
			actions := adminCheckPostForms(t, doc)
			if role == "admin" {
				adminSameNames(t, "create form", adminInputNames(doc.Find(tid("admin-boot-subnet-create-form"))),
					"name", "cidr", "gateway", "range_start", "range_end", "dns_servers", "lease_seconds")
			} else if len(actions) != 0 {
				t.Errorf("%s gets forms %v", role, actions)
			}

			doc = adminRender(t, AdminBootSubnet(adminBootSubnetDetailSample(role)))
			actions = adminCheckPostForms(t, doc)
			want := []string{"/admin/boot-subnets/bs%2F1/reservations/52:54:00:aa:00:01/delete", "/admin/boot-subnets/bs%2F1/reservations", "/admin/boot-subnets/bs%2F1/delete"}
			if role != "admin" {
				want = nil
			}
			if strings.Join(actions, " ") != strings.Join(want, " ") {
				t.Errorf("%s forms %v, want %v", role, actions, want)
			}
			if doc.Find(tid("admin-lease-declined")).Length() != 1 || doc.Find(tid("admin-lease-reserved")).Length() != 1 {
				t.Error("lease marks missing")
			}
			if got := doc.Find(tid("boot-subnet-lease-time")).Text(); got != "10 min" {
				t.Errorf("lease time %q", got)
			}
		})
	}
}

func TestAdminBootSubnetErrorsRedisplay(t *testing.T) {
	v := adminBootSubnetDetailSample("admin")
	v.Form = AdminReservationForm{MAC: "52:54:00:aa:00:02", IP: "10.213.0.105"}
	v.Errors = FormErrors{"ip": "the address is inside the dynamic range 10.213.0.100–10.213.0.109"}
	doc := adminRender(t, AdminBootSubnet(v))
	ip := adminMustHave(t, doc, `[name="ip"]`)
	if ip.AttrOr("aria-invalid", "") != "true" || ip.AttrOr("value", "") != "10.213.0.105" ||
		!strings.Contains(doc.Find(tid("error-ip")).Text(), "dynamic range") {
		t.Errorf("ip field: %v", ip.Nodes)
	}
	if mac := doc.Find(`[name="mac"]`); mac.AttrOr("value", "") != "52:54:00:aa:00:02" || mac.AttrOr("aria-invalid", "") == "true" {
		t.Error("mac field not kept as typed")
	}
	doc = adminRender(t, AdminBootSubnets(AdminBootSubnetsView{Page: adminTestPage("admin", "admin-boot-subnets")}))
	if !strings.Contains(doc.Find(tid("admin-boot-subnets-empty")).Text(), "answers only on boot subnets") {
		t.Error("empty state does not explain")
	}
}

func TestAdminSeconds(t *testing.T) {
	for in, want := range map[int64]string{90: "90 s", 600: "10 min", 3600: "1 h", 7200: "2 h", 604800: "7 d", 0: "0 s"} {
		if got := adminSeconds(in); got != want {
			t.Errorf("adminSeconds(%d) = %q, want %q", in, got, want)
		}
	}
}
