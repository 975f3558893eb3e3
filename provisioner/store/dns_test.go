package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestDNSRecordValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "dnsval")
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano")); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			in    store.DNSRecordInput
			kind  error
			field string
			want  string // canonical value when accepted
		}{
			{"a", store.DNSRecordInput{Name: "WWW", Type: "a", Value: " 192.0.2.10 "}, nil, "", "192.0.2.10"},
			{"a at apex", store.DNSRecordInput{Name: "@", Type: "A", Value: "192.0.2.11"}, nil, "", "192.0.2.11"},
			{"a with ipv6", store.DNSRecordInput{Name: "x", Type: "A", Value: "2001:db8::1"}, store.ErrInvalid, "value", ""},
			{"a garbage", store.DNSRecordInput{Name: "x", Type: "A", Value: "300.1.1.1"}, store.ErrInvalid, "value", ""},
			{"aaaa", store.DNSRecordInput{Name: "v6", Type: "AAAA", Value: "2001:DB8::1"}, nil, "", "2001:db8::1"},
			{"aaaa with ipv4", store.DNSRecordInput{Name: "v6", Type: "AAAA", Value: "192.0.2.1"}, store.ErrInvalid, "value", ""},
			{"cname", store.DNSRecordInput{Name: "blog", Type: "CNAME", Value: "Example.COM."}, nil, "", "example.com."},
			{"cname single label", store.DNSRecordInput{Name: "blog2", Type: "CNAME", Value: "localhost"}, store.ErrInvalid, "value", ""},
			{"cname beside a", store.DNSRecordInput{Name: "www", Type: "CNAME", Value: "example.com"}, store.ErrConflict, "name", ""},
			{"a beside cname", store.DNSRecordInput{Name: "blog", Type: "A", Value: "192.0.2.1"}, store.ErrConflict, "name", ""},
			{"cname at vm name", store.DNSRecordInput{Name: "web", Type: "CNAME", Value: "example.com"}, store.ErrConflict, "name", ""},
			{"mx", store.DNSRecordInput{Name: "@", Type: "MX", Value: "mail.example.com", Priority: 10}, nil, "", "mail.example.com."},
			{"mx priority too big", store.DNSRecordInput{Name: "@", Type: "MX", Value: "mx2.example.com", Priority: 65536}, store.ErrInvalid, "priority", ""},
			{"mx negative priority", store.DNSRecordInput{Name: "@", Type: "MX", Value: "mx2.example.com", Priority: -1}, store.ErrInvalid, "priority", ""},
			{"priority on a", store.DNSRecordInput{Name: "p", Type: "A", Value: "192.0.2.1", Priority: 5}, store.ErrInvalid, "priority", ""},
			{"txt", store.DNSRecordInput{Name: "_acme-challenge", Type: "TXT", Value: "v=spf1 -all"}, nil, "", "v=spf1 -all"},
			{"txt 255", store.DNSRecordInput{Name: "long", Type: "TXT", Value: strings.Repeat("x", 255)}, nil, "", strings.Repeat("x", 255)},
			{"txt 256", store.DNSRecordInput{Name: "long", Type: "TXT", Value: strings.Repeat("x", 256)}, store.ErrInvalid, "value", ""},
			{"txt control", store.DNSRecordInput{Name: "ctl", Type: "TXT", Value: "a\nb"}, store.ErrInvalid, "value", ""},
			{"txt empty", store.DNSRecordInput{Name: "ctl", Type: "TXT", Value: " "}, store.ErrInvalid, "value", ""},
			{"underscore outside txt", store.DNSRecordInput{Name: "_x", Type: "A", Value: "192.0.2.1"}, store.ErrInvalid, "name", ""},
			{"label too long", store.DNSRecordInput{Name: strings.Repeat("a", 64), Type: "A", Value: "192.0.2.1"}, store.ErrInvalid, "name", ""},
			{"label 63", store.DNSRecordInput{Name: strings.Repeat("a", 63), Type: "A", Value: "192.0.2.1"}, nil, "", "192.0.2.1"},
			{"name too long", store.DNSRecordInput{Name: strings.TrimSuffix(strings.Repeat("abcdefghij.", 22), "."), Type: "A", Value: "192.0.2.1"}, store.ErrInvalid, "name", ""},
			{"leading dash", store.DNSRecordInput{Name: "-a", Type: "A", Value: "192.0.2.1"}, store.ErrInvalid, "name", ""},
			{"empty label", store.DNSRecordInput{Name: "a..b", Type: "A", Value: "192.0.2.1"}, store.ErrInvalid, "name", ""},
			{"ttl low", store.DNSRecordInput{Name: "t", Type: "A", Value: "192.0.2.1", TTL: 59}, store.ErrInvalid, "ttl", ""},
			{"ttl high", store.DNSRecordInput{Name: "t", Type: "A", Value: "192.0.2.1", TTL: 86401}, store.ErrInvalid, "ttl", ""},
			{"ns not allowed", store.DNSRecordInput{Name: "sub", Type: "NS", Value: "ns.example.com"}, store.ErrInvalid, "type", ""},
			{"duplicate", store.DNSRecordInput{Name: "www", Type: "A", Value: "192.0.2.10"}, store.ErrConflict, "value", ""},
			{"a private address", store.DNSRecordInput{Name: "lan", Type: "A", Value: "10.1.2.3"}, nil, "", "10.1.2.3"},
			{"a loopback", store.DNSRecordInput{Name: "lo", Type: "A", Value: "127.0.0.1"}, store.ErrInvalid, "value", ""},
			{"a loopback elsewhere in 127/8", store.DNSRecordInput{Name: "lo", Type: "A", Value: "127.9.8.7"}, store.ErrInvalid, "value", ""},
			{"a link-local metadata", store.DNSRecordInput{Name: "md", Type: "A", Value: "169.254.169.254"}, store.ErrInvalid, "value", ""},
			{"a unspecified", store.DNSRecordInput{Name: "z", Type: "A", Value: "0.0.0.0"}, store.ErrInvalid, "value", ""},
			{"a this-network", store.DNSRecordInput{Name: "z", Type: "A", Value: "0.1.2.3"}, store.ErrInvalid, "value", ""},
			{"a multicast", store.DNSRecordInput{Name: "mc", Type: "A", Value: "224.0.0.251"}, store.ErrInvalid, "value", ""},
			{"a broadcast", store.DNSRecordInput{Name: "bc", Type: "A", Value: "255.255.255.255"}, store.ErrInvalid, "value", ""},
			{"aaaa loopback", store.DNSRecordInput{Name: "lo6", Type: "AAAA", Value: "::1"}, store.ErrInvalid, "value", ""},
			{"aaaa link-local", store.DNSRecordInput{Name: "ll6", Type: "AAAA", Value: "fe80::1"}, store.ErrInvalid, "value", ""},
			{"aaaa unspecified", store.DNSRecordInput{Name: "z6", Type: "AAAA", Value: "::"}, store.ErrInvalid, "value", ""},
			{"aaaa mapped loopback", store.DNSRecordInput{Name: "m6", Type: "AAAA", Value: "::ffff:127.0.0.1"}, store.ErrInvalid, "value", ""},
			{"aaaa multicast", store.DNSRecordInput{Name: "mc6", Type: "AAAA", Value: "ff02::1"}, store.ErrInvalid, "value", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rec, err := s.CreateDNSRecord(ctx, f.actor, f.tenant.ID, tc.in)
				if kindOf(err) != tc.kind && !(tc.kind == nil && err == nil) {
					t.Fatalf("err = %v, want kind %v", err, tc.kind)
				}
				if tc.kind != nil {
					if e, ok := store.AsError(err); !ok || e.Field != tc.field {
						t.Errorf("err %v: want field %q", err, tc.field)
					}
					return
				}
				if rec.Value != tc.want || rec.TenantID != f.tenant.ID || rec.ID == "" {
					t.Errorf("got %+v, want value %q", rec, tc.want)
				}
				if tc.in.TTL == 0 && rec.TTL != store.DefaultDNSTTL {
					t.Errorf("ttl = %d", rec.TTL)
				}
			})
		}
	})
}

func TestDNSRecordQuotaAndIsolation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "dnsq")
		other := setup(t, s, "dnsother")
		var ids []string
		for i := range store.MaxDNSRecordsPerTenant {
			r, err := s.CreateDNSRecord(ctx, f.actor, f.tenant.ID, store.DNSRecordInput{Name: fmt.Sprintf("h%d", i), Type: "A", Value: "192.0.2.1"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if _, err := s.CreateDNSRecord(ctx, f.actor, f.tenant.ID, store.DNSRecordInput{Name: "over", Type: "A", Value: "192.0.2.1"}); !errors.Is(err, store.ErrQuota) {
			t.Fatalf("record over quota: %v", err)
		}
		// The other tenant neither sees nor deletes them, and has its own quota.
		recs, total, err := s.ListDNSRecords(ctx, other.tenant.ID, store.Page{})
		if err != nil || total != 0 || len(recs) != 0 {
			t.Fatalf("other tenant lists %d/%d records: %v", len(recs), total, err)
		}
		if err := s.DeleteDNSRecord(ctx, other.actor, other.tenant.ID, ids[0]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete another tenant's record: %v", err)
		}
		if _, err := s.CreateDNSRecord(ctx, other.actor, other.tenant.ID, store.DNSRecordInput{Name: "h0", Type: "A", Value: "192.0.2.1"}); err != nil {
			t.Fatalf("same record in another tenant: %v", err)
		}
		recs, total, err = s.ListDNSRecords(ctx, f.tenant.ID, store.Page{Number: 2, PerPage: 20})
		if err != nil || total != store.MaxDNSRecordsPerTenant || len(recs) != 20 {
			t.Fatalf("page 2: %d/%d records: %v", len(recs), total, err)
		}
		if err := s.DeleteDNSRecord(ctx, f.actor, f.tenant.ID, ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDNSRecord(ctx, f.actor, f.tenant.ID, ids[0]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := s.CreateDNSRecord(ctx, f.actor, f.tenant.ID, store.DNSRecordInput{Name: "again", Type: "A", Value: "192.0.2.1"}); err != nil {
			t.Fatalf("create after delete: %v", err)
		}
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "dns.record.delete"}, store.Page{})
		if err != nil || len(entries) != 2 || entries[0].Result != store.ResultFailure || entries[1].Result != store.ResultSuccess {
			t.Fatalf("audit: %+v %v", entries, err)
		}
	})
}

func TestDNSSnapshotSerial(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "zoneco")
		snap := func() store.DNSZone {
			t.Helper()
			z, err := s.DNSSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return z
		}
		z0 := snap()
		if again := snap(); again.Serial != z0.Serial {
			t.Fatalf("serial moved without a change: %d → %d", z0.Serial, again.Serial)
		}
		rec, err := s.CreateDNSRecord(ctx, f.actor, f.tenant.ID, store.DNSRecordInput{Name: "www", Type: "A", Value: "192.0.2.80"})
		if err != nil {
			t.Fatal(err)
		}
		z1 := snap()
		if z1.Serial <= z0.Serial {
			t.Fatalf("serial after a record change: %d, before %d", z1.Serial, z0.Serial)
		}
		if len(z1.Records) != 1 || z1.Records[0].TenantSlug != "zoneco" || z1.Records[0].ID != rec.ID {
			t.Fatalf("records: %+v", z1.Records)
		}
		if again := snap(); again.Serial != z1.Serial {
			t.Fatalf("serial moved twice for one change: %d → %d", z1.Serial, again.Serial)
		}

		// VM addresses change in code that knows nothing of DNS; the
		// snapshot notices and bumps.
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "db", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "10.20.0.0/24", Gateway: "10.20.0.1",
			RangeStart: "10.20.0.10", RangeEnd: "10.20.0.20"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AllocateIP(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		z2 := snap()
		if z2.Serial <= z1.Serial {
			t.Fatalf("serial after an address change: %d, before %d", z2.Serial, z1.Serial)
		}
		want := []store.DNSHost{{TenantSlug: "zoneco", Name: "db", IP: netip.MustParseAddr("10.20.0.10")}}
		if diff := cmp.Diff(want, z2.Hosts, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("hosts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}, z2.Subnets, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("subnets (-want +got):\n%s", diff)
		}
		if err := s.ReleaseIP(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		z3 := snap()
		if z3.Serial <= z2.Serial || len(z3.Hosts) != 0 {
			t.Fatalf("after release: serial %d (before %d), hosts %v", z3.Serial, z2.Serial, z3.Hosts)
		}
		if err := s.DeleteDNSRecord(ctx, f.actor, f.tenant.ID, rec.ID); err != nil {
			t.Fatal(err)
		}
		if z4 := snap(); z4.Serial <= z3.Serial || len(z4.Records) != 0 {
			t.Fatalf("after delete: serial %d (before %d), records %v", z4.Serial, z3.Serial, z4.Records)
		}
	})
}

// TestDNSSnapshotSuspendedTenant withdraws a suspended tenant's records
// and VM names from the zone and brings them back when it is unsuspended.
func TestDNSSnapshotSuspendedTenant(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "parked")
		other := setup(t, s, "stays")
		if _, err := s.CreateDNSRecord(ctx, f.actor, f.tenant.ID, store.DNSRecordInput{Name: "www", Type: "A", Value: "192.0.2.80"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateDNSRecord(ctx, other.actor, other.tenant.ID, store.DNSRecordInput{Name: "www", Type: "A", Value: "192.0.2.81"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "10.21.0.0/24", Gateway: "10.21.0.1",
			RangeStart: "10.21.0.10", RangeEnd: "10.21.0.20"}); err != nil {
			t.Fatal(err)
		}
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "db", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AllocateIP(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		slugs := func(z store.DNSZone) (recs, hosts []string) {
			for _, r := range z.Records {
				recs = append(recs, r.TenantSlug)
			}
			for _, h := range z.Hosts {
				hosts = append(hosts, h.TenantSlug)
			}
			return recs, hosts
		}
		z0, err := s.DNSSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if recs, hosts := slugs(z0); len(recs) != 2 || len(hosts) != 1 {
			t.Fatalf("before suspension: records of %v, hosts of %v", recs, hosts)
		}
		if err := s.SuspendTenant(ctx, staff, f.tenant.ID, "unpaid"); err != nil {
			t.Fatal(err)
		}
		z1, err := s.DNSSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if recs, hosts := slugs(z1); z1.Serial <= z0.Serial || len(recs) != 1 || recs[0] != "stays" || len(hosts) != 0 {
			t.Errorf("suspended: serial %d (was %d), records of %v, hosts of %v; want only the other tenant's record", z1.Serial, z0.Serial, recs, hosts)
		}
		if err := s.UnsuspendTenant(ctx, staff, f.tenant.ID); err != nil {
			t.Fatal(err)
		}
		z2, err := s.DNSSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if recs, hosts := slugs(z2); z2.Serial <= z1.Serial || len(recs) != 2 || len(hosts) != 1 {
			t.Errorf("unsuspended: serial %d (was %d), records of %v, hosts of %v", z2.Serial, z1.Serial, recs, hosts)
		}
	})
}

// TestDNSSnapshotMachines publishes enlisted machines under the machine
// subzone, internal only, at their boot MAC's reservation or else newest
// unexpired lease, and bumps the serial as that changes.
func TestDNSSnapshotMachines(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		snap := func() store.DNSZone {
			t.Helper()
			z, err := s.DNSSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return z
		}
		addrCmp := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
		wantHost := func(z store.DNSZone, ip string) {
			t.Helper()
			var want []store.DNSHost
			if ip != "" {
				want = []store.DNSHost{{TenantSlug: store.MachineSubzone, Name: "node-1", IP: netip.MustParseAddr(ip), Internal: true}}
			}
			if diff := cmp.Diff(want, z.Hosts, addrCmp); diff != "" {
				t.Fatalf("hosts (-want +got):\n%s", diff)
			}
		}
		const boot, other = "52:54:00:dd:00:01", "52:54:00:dd:00:02"
		m := enlist(t, s, "node-1", boot, other)
		enlist(t, s, "node-2", "52:54:00:dd:00:03") // never gets an address
		sn := bootSubnet(t, s, rackInput())
		z0 := snap()
		wantHost(z0, "")
		if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix("10.213.0.0/24")}, z0.Subnets, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("subnets (-want +got):\n%s", diff)
		}

		// An expired lease does not count; a current one does.
		if _, err := s.Lease(ctx, sn.ID, boot, netip.Addr{}, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if z := snap(); len(z.Hosts) != 0 || z.Serial != z0.Serial {
			t.Fatalf("expired lease published: serial %d (before %d), hosts %v", z.Serial, z0.Serial, z.Hosts)
		}
		l, err := s.Lease(ctx, sn.ID, boot, netip.Addr{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		z1 := snap()
		wantHost(z1, l.IP.String())
		if z1.Serial <= z0.Serial {
			t.Fatalf("serial after a lease: %d, before %d", z1.Serial, z0.Serial)
		}
		// Another MAC of the machine is not its name's address.
		if _, err := s.Lease(ctx, sn.ID, other, netip.Addr{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if z := snap(); z.Serial != z1.Serial {
			t.Fatalf("non-boot lease moved the serial: %d → %d", z1.Serial, z.Serial)
		}

		// The reservation wins over the lease.
		if _, err := s.AddReservation(ctx, staff, boot, sn.ID, "10.213.0.50", "node-1"); err != nil {
			t.Fatal(err)
		}
		z2 := snap()
		wantHost(z2, "10.213.0.50")
		if z2.Serial <= z1.Serial {
			t.Fatalf("serial after a reservation: %d, before %d", z2.Serial, z1.Serial)
		}
		if err := s.DeleteReservation(ctx, staff, boot); err != nil {
			t.Fatal(err)
		}
		z3 := snap()
		wantHost(z3, l.IP.String())
		if z3.Serial <= z2.Serial {
			t.Fatalf("serial after the reservation went: %d, before %d", z3.Serial, z2.Serial)
		}
		if err := s.Release(ctx, sn.ID, boot); err != nil {
			t.Fatal(err)
		}
		z4 := snap()
		wantHost(z4, "")
		if z4.Serial <= z3.Serial {
			t.Fatalf("serial after release: %d, before %d", z4.Serial, z3.Serial)
		}

		// Deleting the machine takes its name away.
		if _, err := s.AddReservation(ctx, staff, boot, sn.ID, "10.213.0.51", ""); err != nil {
			t.Fatal(err)
		}
		z5 := snap()
		wantHost(z5, "10.213.0.51")
		if err := s.DeleteMachine(ctx, staffActor, m.ID); err != nil {
			t.Fatal(err)
		}
		z6 := snap()
		wantHost(z6, "")
		if z6.Serial <= z5.Serial {
			t.Fatalf("serial after delete: %d, before %d", z6.Serial, z5.Serial)
		}
	})
}
