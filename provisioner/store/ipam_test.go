package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestSubnetValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		good := store.SubnetInput{Name: "lan", CIDR: "192.0.2.0/24", Gateway: "192.0.2.1", DNSServers: []string{"192.0.2.53", " ", "192.0.2.53"},
			RangeStart: "192.0.2.10", RangeEnd: "192.0.2.250"}
		sn, err := s.CreateSubnet(ctx, staff, good)
		if err != nil {
			t.Fatal(err)
		}
		if sn.DNSServers != "192.0.2.53" || sn.CIDR != "192.0.2.0/24" {
			t.Errorf("created %+v", sn)
		}
		edit := func(f func(*store.SubnetInput)) store.SubnetInput {
			in := good
			in.Name = "other"
			in.CIDR, in.Gateway, in.RangeStart, in.RangeEnd = "198.51.100.0/24", "198.51.100.1", "198.51.100.10", "198.51.100.20"
			f(&in)
			return in
		}
		for _, tc := range []struct {
			name  string
			in    store.SubnetInput
			kind  error
			field string
		}{
			{"duplicate name", edit(func(in *store.SubnetInput) { in.Name = "lan" }), store.ErrConflict, "name"},
			{"bad name", edit(func(in *store.SubnetInput) { in.Name = "a b" }), store.ErrInvalid, "name"},
			{"overlap", edit(func(in *store.SubnetInput) {
				in.CIDR, in.Gateway, in.RangeStart, in.RangeEnd = "192.0.2.128/25", "192.0.2.129", "192.0.2.130", "192.0.2.140"
			}), store.ErrConflict, "cidr"},
			{"ipv6", edit(func(in *store.SubnetInput) { in.CIDR = "2001:db8::/64" }), store.ErrInvalid, "cidr"},
			{"not a network", edit(func(in *store.SubnetInput) { in.CIDR = "198.51.100.7/24" }), store.ErrInvalid, "cidr"},
			{"too small", edit(func(in *store.SubnetInput) { in.CIDR = "198.51.100.0/31" }), store.ErrInvalid, "cidr"},
			{"garbage", edit(func(in *store.SubnetInput) { in.CIDR = "lan" }), store.ErrInvalid, "cidr"},
			{"gateway outside", edit(func(in *store.SubnetInput) { in.Gateway = "192.0.2.1" }), store.ErrInvalid, "gateway"},
			{"gateway is broadcast", edit(func(in *store.SubnetInput) { in.Gateway = "198.51.100.255" }), store.ErrInvalid, "gateway"},
			{"bad dns", edit(func(in *store.SubnetInput) { in.DNSServers = []string{"dns.example"} }), store.ErrInvalid, "dns_servers"},
			{"start outside", edit(func(in *store.SubnetInput) { in.RangeStart = "192.0.2.10" }), store.ErrInvalid, "range_start"},
			{"end outside", edit(func(in *store.SubnetInput) { in.RangeEnd = "198.51.101.1" }), store.ErrInvalid, "range_end"},
			{"end before start", edit(func(in *store.SubnetInput) { in.RangeEnd = "198.51.100.9" }), store.ErrInvalid, "range_end"},
			{"range holds network", edit(func(in *store.SubnetInput) { in.RangeStart = "198.51.100.0" }), store.ErrInvalid, "range_start"},
			{"range holds broadcast", edit(func(in *store.SubnetInput) { in.RangeEnd = "198.51.100.255" }), store.ErrInvalid, "range_end"},
			{"range holds gateway", edit(func(in *store.SubnetInput) { in.Gateway = "198.51.100.15" }), store.ErrInvalid, "range_start"},
		} {
			_, err := s.CreateSubnet(ctx, staff, tc.in)
			e, ok := store.AsError(err)
			if !ok || !errors.Is(err, tc.kind) || e.Field != tc.field {
				t.Errorf("%s: err = %v, want %v on %q", tc.name, err, tc.kind, tc.field)
			}
		}
		// No gateway at all is fine (an isolated network).
		if _, err := s.CreateSubnet(ctx, staff, edit(func(in *store.SubnetInput) { in.Gateway = "" })); err != nil {
			t.Errorf("subnet without gateway: %v", err)
		}
	})
}

func TestAllocateIP(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := bigTenant(t, s, "ipam")
		var vms []string
		for i := range 7 {
			vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%d", i), "nano"))
			if err != nil {
				t.Fatal(err)
			}
			vms = append(vms, vm.ID)
		}
		if _, err := s.AllocateIP(ctx, vms[0]); !errors.Is(err, store.ErrNoCapacity) {
			t.Errorf("allocate without subnets: %v", err)
		}
		// Three addresses: .2 to .4.
		lab, err := s.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lab", CIDR: "192.0.2.0/29", Gateway: "192.0.2.1",
			DNSServers: []string{"192.0.2.1"}, RangeStart: "192.0.2.2", RangeEnd: "192.0.2.4"})
		if err != nil {
			t.Fatal(err)
		}
		addr, err := s.AllocateIP(ctx, vms[0])
		if err != nil {
			t.Fatal(err)
		}
		want := store.Address{SubnetID: lab.ID, IP: netip.MustParseAddr("192.0.2.2"), Prefix: netip.MustParsePrefix("192.0.2.0/29"),
			Gateway: netip.MustParseAddr("192.0.2.1"), DNS: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
		if diff := cmp.Diff(want, addr, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("first address (-want +got):\n%s", diff)
		}
		if addr.Interface().String() != "192.0.2.2/29" {
			t.Errorf("interface = %s", addr.Interface())
		}
		if d, _ := s.GetVM(ctx, f.tenant.ID, vms[0]); d.IP != "192.0.2.2" {
			t.Errorf("vm ip = %q", d.IP)
		}
		ips := func(ids ...string) []string {
			t.Helper()
			var out []string
			for _, id := range ids {
				a, err := s.AllocateIP(ctx, id)
				if err != nil {
					out = append(out, err.Error())
					continue
				}
				out = append(out, a.IP.String())
			}
			return out
		}
		// Idempotent, then lowest free, then full.
		if diff := cmp.Diff([]string{"192.0.2.2", "192.0.2.3", "192.0.2.4", "subnet lab is full"}, ips(vms[0], vms[1], vms[2], vms[3])); diff != "" {
			t.Errorf("allocations (-want +got):\n%s", diff)
		}
		if err := s.ReleaseIP(ctx, vms[1]); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseIP(ctx, vms[1]); err != nil {
			t.Errorf("release twice: %v", err)
		}
		if d, _ := s.GetVM(ctx, f.tenant.ID, vms[1]); d.IP != "" {
			t.Errorf("released vm ip = %q", d.IP)
		}
		// The freed address is reused; then the second subnet takes over.
		if _, err := s.CreateSubnet(ctx, staff, store.SubnetInput{Name: "more", CIDR: "198.51.100.0/24", RangeStart: "198.51.100.100", RangeEnd: "198.51.100.101"}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"192.0.2.3", "198.51.100.100", "198.51.100.101", "subnets lab, more are full"}, ips(vms[3], vms[4], vms[5], vms[6])); diff != "" {
			t.Errorf("allocations after release (-want +got):\n%s", diff)
		}
		subnets, err := s.ListSubnets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var counts []string
		for _, sn := range subnets {
			counts = append(counts, fmt.Sprintf("%s %d/%d free %d", sn.Name, sn.Used, sn.Size, sn.Free))
		}
		if diff := cmp.Diff([]string{"lab 3/3 free 0", "more 2/2 free 0"}, counts); diff != "" {
			t.Errorf("subnet counts (-want +got):\n%s", diff)
		}
		if err := s.DeleteSubnet(ctx, staff, lab.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("delete subnet in use: %v", err)
		}
		if _, err := s.AllocateIP(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("allocate for unknown vm: %v", err)
		}
	})
}

// TestConcurrentAllocateIP races 30 VMs for addresses on PostgreSQL, each
// asking twice at once: every VM gets one address and no two share one.
func TestConcurrentAllocateIP(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.DSN(t))
	f := bigTenant(t, s, "race-ip")
	if _, err := s.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "10.20.0.0/24", Gateway: "10.20.0.1", RangeStart: "10.20.0.2", RangeEnd: "10.20.0.254"}); err != nil {
		t.Fatal(err)
	}
	const n = 30
	ids := make([]string, n)
	for i := range ids {
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%d", i), "nano"))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = vm.ID
	}
	got := make([]string, 2*n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := s.AllocateIP(ctx, ids[i%n])
			if err != nil {
				t.Errorf("allocate: %v", err)
				return
			}
			got[i] = a.IP.String()
		}()
	}
	close(start)
	wg.Wait()
	owner := map[string]string{}
	for i, ip := range got {
		vm := ids[i%n]
		if got[i%n] != ip {
			t.Errorf("vm %d got %s and %s", i%n, got[i%n], ip)
		}
		if o, ok := owner[ip]; ok && o != vm {
			t.Errorf("%s handed to two VMs", ip)
		}
		owner[ip] = vm
	}
	if len(owner) != n {
		t.Errorf("%d distinct addresses for %d VMs", len(owner), n)
	}
	for i := 2; i < 2+n; i++ {
		if _, ok := owner[fmt.Sprintf("10.20.0.%d", i)]; !ok {
			t.Errorf("10.20.0.%d unused: allocation is not lowest-first", i)
		}
	}
}
