package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pressly/goose/v3"
	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func bootSubnet(t testing.TB, s *store.Store, in store.BootSubnetInput) store.BootSubnet {
	t.Helper()
	sn, err := s.CreateBootSubnet(context.Background(), staff, in)
	if err != nil {
		t.Fatalf("create boot subnet: %v", err)
	}
	return sn
}

func rackInput() store.BootSubnetInput {
	return store.BootSubnetInput{Name: "rack", CIDR: "10.213.0.0/24", Gateway: "10.213.0.1",
		DNSServers: []string{"10.213.0.1", " 9.9.9.9 "}, DynamicStart: "10.213.0.10", DynamicEnd: "10.213.0.19", LeaseSeconds: 600}
}

func TestCreateBootSubnet(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sn := bootSubnet(t, s, rackInput())
		want := store.BootSubnet{ID: sn.ID, Name: "rack", CIDR: "10.213.0.0/24", Gateway: "10.213.0.1", DNSServers: "10.213.0.1,9.9.9.9",
			DynamicStart: "10.213.0.10", DynamicEnd: "10.213.0.19", LeaseSeconds: 600, CreatedAt: sn.CreatedAt, UpdatedAt: sn.UpdatedAt}
		if diff := cmp.Diff(want, sn); diff != "" {
			t.Errorf("created (-want +got):\n%s", diff)
		}
		n, err := sn.Net()
		if err != nil || n.LeaseTime != 10*time.Minute || n.Prefix.String() != "10.213.0.0/24" || len(n.DNS) != 2 {
			t.Errorf("Net() = %+v, %v", n, err)
		}
		only := bootSubnet(t, s, store.BootSubnetInput{Name: "reserved-only", CIDR: "10.214.0.0/24"})
		if only.LeaseSeconds != 3600 || only.DynamicStart != "" {
			t.Errorf("reservations-only subnet = %+v", only)
		}

		cases := []struct {
			name  string
			edit  func(*store.BootSubnetInput)
			kind  error
			field string
		}{
			{"ipv6", func(in *store.BootSubnetInput) { in.CIDR = "2001:db8::/64" }, store.ErrInvalid, "cidr"},
			{"not the network address", func(in *store.BootSubnetInput) { in.CIDR = "10.9.0.1/24" }, store.ErrInvalid, "cidr"},
			{"gateway outside", func(in *store.BootSubnetInput) { in.Gateway = "10.8.0.1" }, store.ErrInvalid, "gateway"},
			{"start outside", func(in *store.BootSubnetInput) { in.DynamicStart = "10.8.0.10" }, store.ErrInvalid, "dynamic_start"},
			{"end outside", func(in *store.BootSubnetInput) { in.DynamicEnd = "10.9.1.10" }, store.ErrInvalid, "dynamic_end"},
			{"end before start", func(in *store.BootSubnetInput) { in.DynamicStart, in.DynamicEnd = "10.9.0.50", "10.9.0.40" }, store.ErrInvalid, "dynamic_end"},
			{"only a start", func(in *store.BootSubnetInput) { in.DynamicEnd = "" }, store.ErrInvalid, "dynamic_end"},
			{"range holds the gateway", func(in *store.BootSubnetInput) { in.Gateway = "10.9.0.12" }, store.ErrInvalid, "dynamic_start"},
			{"broadcast in range", func(in *store.BootSubnetInput) { in.DynamicEnd = "10.9.0.255" }, store.ErrInvalid, "dynamic_end"},
			{"bad dns", func(in *store.BootSubnetInput) { in.DNSServers = []string{"dns.example"} }, store.ErrInvalid, "dns_servers"},
			{"lease too short", func(in *store.BootSubnetInput) { in.LeaseSeconds = 5 }, store.ErrInvalid, "lease_seconds"},
			{"bad name", func(in *store.BootSubnetInput) { in.Name = "Rack 2!" }, store.ErrInvalid, "name"},
			{"duplicate name", func(in *store.BootSubnetInput) { in.Name = "rack" }, store.ErrConflict, "name"},
			{"overlap", func(in *store.BootSubnetInput) {
				in.CIDR, in.Gateway, in.DynamicStart, in.DynamicEnd = "10.213.0.0/16", "", "", ""
			}, store.ErrConflict, "cidr"},
		}
		for _, tc := range cases {
			in := store.BootSubnetInput{Name: "other", CIDR: "10.9.0.0/24", Gateway: "10.9.0.1", DynamicStart: "10.9.0.10", DynamicEnd: "10.9.0.20"}
			tc.edit(&in)
			_, err := s.CreateBootSubnet(ctx, staff, in)
			e, ok := store.AsError(err)
			if !ok || !errors.Is(err, tc.kind) || e.Field != tc.field {
				t.Errorf("%s: err = %v (%+v), want %v on %q", tc.name, err, e, tc.kind, tc.field)
			}
		}
		list, err := s.ListBootSubnets(ctx)
		if err != nil || len(list) != 2 || list[0].ID != sn.ID || list[1].ID != only.ID {
			t.Errorf("list = %+v, %v", list, err)
		}
		if got, err := s.GetBootSubnet(ctx, "rack"); err != nil || got.ID != sn.ID {
			t.Errorf("get by name = %+v, %v", got, err)
		}
		if err := s.DeleteBootSubnet(ctx, staff, only.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetBootSubnet(ctx, only.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get after delete: %v", err)
		}
	})
}

func TestReservations(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sn := bootSubnet(t, s, rackInput())
		r, err := s.AddReservation(ctx, staff, "52-54-00-AA-00-01", sn.ID, "10.213.0.50", "node-1")
		if err != nil {
			t.Fatal(err)
		}
		if r.MAC != "52:54:00:aa:00:01" || r.IP != "10.213.0.50" || r.Hostname != "node-1" {
			t.Errorf("reservation = %+v", r)
		}
		cases := []struct {
			name, mac, subnet, ip, host string
			kind                        error
			field                       string
		}{
			{"bad mac", "52:54:00", sn.ID, "10.213.0.51", "", store.ErrInvalid, "mac"},
			{"outside subnet", "52:54:00:aa:00:02", sn.ID, "10.214.0.51", "", store.ErrInvalid, "ip"},
			{"in dynamic range", "52:54:00:aa:00:02", sn.ID, "10.213.0.15", "", store.ErrInvalid, "ip"},
			{"the gateway", "52:54:00:aa:00:02", sn.ID, "10.213.0.1", "", store.ErrInvalid, "ip"},
			{"broadcast", "52:54:00:aa:00:02", sn.ID, "10.213.0.255", "", store.ErrInvalid, "ip"},
			{"bad hostname", "52:54:00:aa:00:02", sn.ID, "10.213.0.51", "node_1.example", store.ErrInvalid, "hostname"},
			{"address taken", "52:54:00:aa:00:02", sn.ID, "10.213.0.50", "", store.ErrConflict, "ip"},
			{"mac taken", "52:54:00:aa:00:01", sn.ID, "10.213.0.51", "", store.ErrConflict, "mac"},
			{"no such subnet", "52:54:00:aa:00:02", "nope", "10.213.0.51", "", store.ErrNotFound, ""},
		}
		for _, tc := range cases {
			_, err := s.AddReservation(ctx, staff, tc.mac, tc.subnet, tc.ip, tc.host)
			e, ok := store.AsError(err)
			if !ok || !errors.Is(err, tc.kind) || e.Field != tc.field {
				t.Errorf("%s: err = %v, want %v on %q", tc.name, err, tc.kind, tc.field)
			}
		}
		if _, err := s.AddReservation(ctx, staff, "52:54:00:aa:00:02", sn.ID, "10.213.0.9", ""); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListReservations(ctx, sn.ID)
		if err != nil || len(list) != 2 || list[0].IP != "10.213.0.9" || list[1].IP != "10.213.0.50" {
			t.Errorf("list = %+v, %v", list, err)
		}
		if err := s.DeleteReservation(ctx, staff, "52:54:00:aa:00:02"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteReservation(ctx, staff, "52:54:00:aa:00:02"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})
}

func TestLease(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sn := bootSubnet(t, s, rackInput())
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		none := netip.Addr{}
		ip := netip.MustParseAddr
		lease := func(mac string, want netip.Addr, at time.Time) store.Lease {
			t.Helper()
			l, err := s.Lease(ctx, sn.ID, mac, want, at)
			if err != nil {
				t.Fatalf("lease %s: %v", mac, err)
			}
			return l
		}
		steps := []struct {
			name      string
			mac       string
			requested netip.Addr
			at        time.Time
			want      netip.Addr
		}{
			{"first mac gets the lowest", "52:54:00:00:00:01", none, t0, ip("10.213.0.10")},
			{"same mac, same address", "52:54:00:00:00:01", none, t0.Add(time.Minute), ip("10.213.0.10")},
			{"existing lease beats a request", "52:54:00:00:00:01", ip("10.213.0.18"), t0, ip("10.213.0.10")},
			{"requested and free", "52:54:00:00:00:02", ip("10.213.0.15"), t0, ip("10.213.0.15")},
			{"requested but taken", "52:54:00:00:00:03", ip("10.213.0.15"), t0, ip("10.213.0.11")},
			{"requested outside the range", "52:54:00:00:00:04", ip("10.213.0.100"), t0, ip("10.213.0.12")},
			{"requested on another network", "52:54:00:00:00:05", ip("192.168.1.20"), t0, ip("10.213.0.13")},
			{"mac in another spelling", "52-54-00-00-00-02", none, t0, ip("10.213.0.15")},
		}
		for _, st := range steps {
			l := lease(st.mac, st.requested, st.at)
			if l.IP != st.want || l.SubnetID != sn.ID || !l.ExpiresAt.Equal(st.at.Add(10*time.Minute)) {
				t.Errorf("%s: got %s until %s, want %s until %s", st.name, l.IP, l.ExpiresAt, st.want, st.at.Add(10*time.Minute))
			}
		}

		// A reservation wins over the dynamic lease the MAC held.
		if _, err := s.AddReservation(ctx, staff, "52:54:00:00:00:03", sn.ID, "10.213.0.50", "node-3"); err != nil {
			t.Fatal(err)
		}
		if l := lease("52:54:00:00:00:03", none, t0); l.IP != ip("10.213.0.50") || l.Hostname != "node-3" {
			t.Errorf("reserved lease = %+v", l)
		}
		// Its old address is free again, and the lowest.
		if l := lease("52:54:00:00:00:06", none, t0); l.IP != ip("10.213.0.11") {
			t.Errorf("after the reserved MAC moved: %s, want 10.213.0.11", l.IP)
		}

		if err := s.Release(ctx, sn.ID, "52:54:00:00:00:01"); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, sn.ID, "52:54:00:00:00:01"); err != nil {
			t.Errorf("second release: %v", err)
		}
		if l := lease("52:54:00:00:00:07", none, t0); l.IP != ip("10.213.0.10") {
			t.Errorf("after release: %s, want 10.213.0.10", l.IP)
		}

		// A declined address is held by nobody until a lease time passes.
		if err := s.Decline(ctx, sn.ID, "52:54:00:00:00:07", ip("10.213.0.10"), t0); err != nil {
			t.Fatal(err)
		}
		if l := lease("52:54:00:00:00:07", none, t0); l.IP != ip("10.213.0.14") {
			t.Errorf("after decline: %s, want 10.213.0.14", l.IP)
		}

		// Fill the range: .10 (declined) .11 .12 .13 .14 .15 are held; .16–.19 left.
		for i := 8; i <= 11; i++ {
			lease(fmt.Sprintf("52:54:00:00:00:%02x", i), none, t0)
		}
		_, err := s.Lease(ctx, sn.ID, "52:54:00:00:00:99", none, t0)
		if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrNoCapacity) || e.Message != "boot subnet rack has no free address" {
			t.Errorf("full range: %v", err)
		}
		// An hour later every lease has run out, all at the same time: the
		// lowest of them is reused.
		later := t0.Add(time.Hour)
		if l := lease("52:54:00:00:00:99", none, later); l.IP != ip("10.213.0.10") {
			t.Errorf("reuse of the first expired lease: %s, want 10.213.0.10", l.IP)
		}
		// The original owner of an expired lease that nobody took gets it back.
		if l := lease("52:54:00:00:00:0b", none, later); l.IP != ip("10.213.0.19") {
			t.Errorf("expired lease back to its owner: %s, want 10.213.0.19", l.IP)
		}

		leases, err := s.ListLeases(ctx, sn.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[netip.Addr]string{}
		for _, l := range leases {
			if other, dup := seen[l.IP]; dup {
				t.Errorf("%s held by %s and %s", l.IP, other, l.MAC)
			}
			seen[l.IP] = l.MAC
		}
		if len(leases) != 11 {
			t.Errorf("%d leases, want 11: %+v", len(leases), leases)
		}

		for name, call := range map[string]func() error{
			"bad mac":        func() error { _, err := s.Lease(ctx, sn.ID, "zz", none, t0); return err },
			"unknown subnet": func() error { _, err := s.Lease(ctx, "nope", "52:54:00:00:00:01", none, t0); return err },
		} {
			if err := call(); kindOf(err) != map[string]error{"bad mac": store.ErrInvalid, "unknown subnet": store.ErrNotFound}[name] {
				t.Errorf("%s: %v", name, err)
			}
		}
		only := bootSubnet(t, s, store.BootSubnetInput{Name: "reserved-only", CIDR: "10.214.0.0/24"})
		if _, err := s.Lease(ctx, only.ID, "52:54:00:00:00:01", none, t0); !errors.Is(err, store.ErrNoCapacity) {
			t.Errorf("lease in a subnet without a range: %v", err)
		}
	})
}

func TestLeaseConcurrent(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := rackInput()
		in.DynamicEnd = "10.213.0.200"
		sn := bootSubnet(t, s, in)
		at := time.Now()
		const n = 40
		got := make([]netip.Addr, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				l, err := s.Lease(ctx, sn.ID, fmt.Sprintf("52:54:00:01:00:%02x", i), netip.Addr{}, at)
				got[i], errs[i] = l.IP, err
			})
		}
		wg.Wait()
		seen := map[netip.Addr]int{}
		for i := range n {
			if errs[i] != nil {
				t.Errorf("mac %d: %v", i, errs[i])
				continue
			}
			if j, dup := seen[got[i]]; dup {
				t.Errorf("macs %d and %d both got %s", j, i, got[i])
			}
			seen[got[i]] = i
		}
		// One MAC asking many times at once gets one address.
		same := make([]netip.Addr, 20)
		for i := range same {
			wg.Go(func() {
				l, err := s.Lease(ctx, sn.ID, "52:54:00:02:00:01", netip.Addr{}, at)
				if err != nil {
					t.Errorf("same mac: %v", err)
				}
				same[i] = l.IP
			})
		}
		wg.Wait()
		for i, a := range same {
			if a != same[0] || !a.IsValid() {
				t.Errorf("call %d got %s, call 0 got %s", i, a, same[0])
			}
		}
		leases, err := s.ListLeases(ctx, sn.ID)
		if err != nil || len(leases) != n+1 {
			t.Errorf("%d leases, %v; want %d", len(leases), err, n+1)
		}
	})
}

func TestDiscoveredAndMachineBoot(t *testing.T) {
	eachDBRaw(t, func(t *testing.T, s *store.Store, raw *gorm.DB) {
		ctx := context.Background()
		sn := bootSubnet(t, s, rackInput())
		ts := time.Now().UTC()
		if err := raw.Exec(`INSERT INTO machines (id, name, state, state_changed_at, created_at, updated_at) VALUES ('m1', 'node-1', 'commissioning', ?, ?, ?)`, ts, ts, ts).Error; err != nil {
			t.Fatal(err)
		}
		if err := raw.Exec(`INSERT INTO machine_macs (mac, machine_id, boot) VALUES ('52:54:00:00:00:01', 'm1', TRUE)`).Error; err != nil {
			t.Fatal(err)
		}

		b, ok, err := s.MachineBoot(ctx, "52:54:00:00:00:01")
		if diff := cmp.Diff(store.BootInfo{MachineID: "m1", Name: "node-1", State: "commissioning"}, b); diff != "" || !ok || err != nil {
			t.Errorf("known mac: ok %v err %v diff (-want +got):\n%s", ok, err, diff)
		}
		if _, ok, err := s.MachineBoot(ctx, "52:54:00:00:00:02"); ok || err != nil {
			t.Errorf("unknown mac: ok %v, %v", ok, err)
		}
		if _, _, err := s.MachineBoot(ctx, "nonsense"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad mac: %v", err)
		}

		type row struct {
			MAC, SubnetID, VendorClass, UserClass string
			Arch                                  int
			FirstSeen, LastSeen                   time.Time
		}
		load := func() []row {
			var out []row
			if err := raw.Raw(`SELECT mac, subnet_id, vendor_class, user_class, arch, first_seen, last_seen FROM discovered_macs ORDER BY mac`).Scan(&out).Error; err != nil {
				t.Fatal(err)
			}
			return out
		}
		if err := s.RecordDiscovered(ctx, "52:54:00:00:00:01", sn.ID, "PXEClient:Arch:00000", 0, ""); err != nil {
			t.Fatal(err)
		}
		if got := load(); len(got) != 0 {
			t.Errorf("an enlisted MAC was recorded: %+v", got)
		}
		if err := s.RecordDiscovered(ctx, "52:54:00:00:00:02", sn.ID, "PXEClient:Arch:00000", 0, ""); err != nil {
			t.Fatal(err)
		}
		first := load()
		time.Sleep(10 * time.Millisecond)
		if err := s.RecordDiscovered(ctx, "52-54-00-00-00-02", sn.ID, "PXEClient:Arch:00007", 7, "iPXE"); err != nil {
			t.Fatal(err)
		}
		second := load()
		if len(first) != 1 || len(second) != 1 {
			t.Fatalf("rows: %+v then %+v", first, second)
		}
		g := second[0]
		if g.MAC != "52:54:00:00:00:02" || g.Arch != 7 || g.UserClass != "iPXE" || g.VendorClass != "PXEClient:Arch:00007" || g.SubnetID != sn.ID {
			t.Errorf("row = %+v", g)
		}
		if !g.FirstSeen.Equal(first[0].FirstSeen) || !g.LastSeen.After(first[0].LastSeen) {
			t.Errorf("first_seen %s→%s (want kept), last_seen %s→%s (want later)", first[0].FirstSeen, g.FirstSeen, first[0].LastSeen, g.LastSeen)
		}
		if err := s.RecordDiscovered(ctx, "bad", sn.ID, "", -1, ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad mac: %v", err)
		}
	})
}

// TestLeaseManyNewMACs gives 500 new MACs addresses from 10 goroutines,
// each following its own hint the way the DHCP server does: all distinct,
// all in the range, and quick (the search starts at the hint instead of
// walking the taken part of the range).
func TestLeaseManyNewMACs(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := rackInput()
		in.CIDR, in.Gateway, in.DNSServers, in.DynamicStart, in.DynamicEnd = "10.213.0.0/16", "10.213.0.1", nil, "10.213.0.10", "10.213.3.250"
		sn := bootSubnet(t, s, in)
		n, err := sn.Net()
		if err != nil {
			t.Fatal(err)
		}
		const workers, each = 10, 50
		at := time.Now()
		start := time.Now()
		got := make([][]store.Lease, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				var from netip.Addr
				for i := range each {
					l, err := s.LeaseFrom(ctx, sn.ID, fmt.Sprintf("52:54:00:03:%02x:%02x", w, i), netip.Addr{}, from, at)
					if err != nil {
						errs[w] = err
						return
					}
					got[w] = append(got[w], l)
					from = l.IP.Next()
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		t.Logf("%d new MACs in %s (%.0f leases/s)", workers*each, took.Round(time.Millisecond), workers*each/took.Seconds())
		seen := map[netip.Addr]string{}
		for w := range workers {
			if errs[w] != nil {
				t.Fatalf("worker %d: %v", w, errs[w])
			}
			for _, l := range got[w] {
				if other, dup := seen[l.IP]; dup {
					t.Errorf("%s went to %s and %s", l.IP, other, l.MAC)
				}
				if !n.InRange(l.IP) {
					t.Errorf("%s is outside the range", l.IP)
				}
				seen[l.IP] = l.MAC
			}
		}
		if len(seen) != workers*each {
			t.Errorf("%d distinct addresses, want %d", len(seen), workers*each)
		}
		leases, err := s.ListLeases(ctx, sn.ID)
		if err != nil || len(leases) != workers*each {
			t.Errorf("%d leases in the database, %v; want %d", len(leases), err, workers*each)
		}
		// Dense from the start: nothing was skipped.
		if last := leases[len(leases)-1].IP; last != netip.MustParseAddr("10.213.1.253") {
			t.Errorf("highest address %s, want 10.213.1.253 (500 from 10.213.0.10 without gaps)", last)
		}
		if took > 30*time.Second {
			t.Errorf("500 new MACs took %s", took)
		}
	})
}

// TestLeaseFrom pins the hint: the search starts there, skips what is
// taken, wraps to the start of the range, and a hint outside the range
// means the start.
func TestLeaseFrom(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sn := bootSubnet(t, s, rackInput()) // range .10–.19
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		ip := netip.MustParseAddr
		steps := []struct {
			name       string
			mac        string
			requested  netip.Addr
			from, want netip.Addr
		}{
			{"at the hint", "52:54:00:04:00:01", netip.Addr{}, ip("10.213.0.15"), ip("10.213.0.15")},
			{"hint taken: the next free", "52:54:00:04:00:02", netip.Addr{}, ip("10.213.0.15"), ip("10.213.0.16")},
			{"hint outside the range: the start", "52:54:00:04:00:03", netip.Addr{}, ip("10.213.0.200"), ip("10.213.0.10")},
			{"the MAC's lease beats the hint", "52:54:00:04:00:01", netip.Addr{}, ip("10.213.0.18"), ip("10.213.0.15")},
			{"a free request beats the hint", "52:54:00:04:00:04", ip("10.213.0.12"), ip("10.213.0.18"), ip("10.213.0.12")},
			{"at the end", "52:54:00:04:00:05", netip.Addr{}, ip("10.213.0.19"), ip("10.213.0.19")},
			{"past the end: wraps to the lowest free", "52:54:00:04:00:06", netip.Addr{}, ip("10.213.0.19"), ip("10.213.0.11")},
			{"a run of taken addresses is skipped", "52:54:00:04:00:07", netip.Addr{}, ip("10.213.0.15"), ip("10.213.0.17")},
		}
		for _, st := range steps {
			l, err := s.LeaseFrom(ctx, sn.ID, st.mac, st.requested, st.from, t0)
			if err != nil || l.IP != st.want {
				t.Errorf("%s: got %s, %v; want %s", st.name, l.IP, err, st.want)
			}
		}
	})
}

// TestMigrationFillsIPInt upgrades a database that holds leases to the
// numeric address column and checks every row got the right number.
func TestMigrationFillsIPInt(t *testing.T) {
	for _, tc := range []struct {
		name, driver string
		dialect      goose.Dialect
		dsn          func(t testing.TB) string
	}{
		{"sqlite", "sqlite", goose.DialectSQLite3, func(t testing.TB) string {
			return "file:" + filepath.Join(t.TempDir(), "m.db") + "?_pragma=foreign_keys(1)"
		}},
		{"postgres", "pgx", goose.DialectPostgres, pgtest.DSN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := sql.Open(tc.driver, tc.dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			p, err := goose.NewProvider(tc.dialect, db, os.DirFS("../../migrations"), goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 5); err != nil {
				t.Fatal(err)
			}
			ts := time.Now().UTC()
			if _, err := db.ExecContext(ctx, `INSERT INTO boot_subnets (id, name, cidr, created_at, updated_at) VALUES ('s1', 'rack', '0.0.0.0/0', $1, $1)`, ts); err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{"10.213.0.10": 0x0ad5000a, "255.255.255.254": 0xfffffffe, "1.2.3.4": 0x01020304, "192.168.100.1": 0xc0a86401}
			for addr := range want {
				if _, err := db.ExecContext(ctx, `INSERT INTO dhcp_leases (subnet_id, ip, mac, expires_at, created_at, updated_at) VALUES ('s1', $1, $1, $2, $2, $2)`, addr, ts); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.UpTo(ctx, 6); err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, `SELECT ip, ip_int FROM dhcp_leases`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]int64{}
			for rows.Next() {
				var ip string
				var v int64
				if err := rows.Scan(&ip, &v); err != nil {
					t.Fatal(err)
				}
				got[ip] = v
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ip_int after the migration (-want +got):\n%s", diff)
			}
		})
	}
}
