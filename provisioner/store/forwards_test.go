package store_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

const fwdMin, fwdMax = 20000, 20009

// runningVM orders a VM and plays the provisioner until it runs with an address.
func runningVM(t *testing.T, s *store.Store, f fixture, name string) store.VM {
	t.Helper()
	ctx := context.Background()
	vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, name, "nano"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AllocateIP(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	got := mustClaim(t, s, "worker", time.Minute)
	if got.ID != vm.ID {
		t.Fatalf("claimed %s, want %s", got.Name, vm.Name)
	}
	if err := s.SetVMState(ctx, vm.ID, "worker", store.VMRunning, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishWork(ctx, vm.ID, "worker", true, 0); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetVM(ctx, "", vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	return d.VM
}

func addLAN(t *testing.T, s *store.Store) {
	t.Helper()
	if _, err := s.CreateSubnet(context.Background(), staff, store.SubnetInput{Name: "lan", CIDR: "10.30.0.0/24",
		Gateway: "10.30.0.1", RangeStart: "10.30.0.10", RangeEnd: "10.30.0.99"}); err != nil {
		t.Fatal(err)
	}
}

func TestPortForwardValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "fwdval")
		other := setup(t, s, "fwdother")
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := s.CreateVM(ctx, other.actor, other.tenant.ID, order(other, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			in    store.PortForwardInput
			want  error
			field string
		}{
			{"target port zero", store.PortForwardInput{VMID: vm.ID, PublicPort: 20001}, store.ErrInvalid, "target_port"},
			{"target port too big", store.PortForwardInput{VMID: vm.ID, PublicPort: 20001, TargetPort: 65536}, store.ErrInvalid, "target_port"},
			{"public port below range", store.PortForwardInput{VMID: vm.ID, PublicPort: 22, TargetPort: 22}, store.ErrInvalid, "public_port"},
			{"public port above range", store.PortForwardInput{VMID: vm.ID, PublicPort: 20010, TargetPort: 22}, store.ErrInvalid, "public_port"},
			{"public port negative", store.PortForwardInput{VMID: vm.ID, PublicPort: -1, TargetPort: 22}, store.ErrInvalid, "public_port"},
			{"no vm", store.PortForwardInput{PublicPort: 20001, TargetPort: 22}, store.ErrInvalid, "vm_id"},
			{"unknown vm", store.PortForwardInput{VMID: "nope", PublicPort: 20001, TargetPort: 22}, store.ErrNotFound, "vm_id"},
			{"another tenant's vm", store.PortForwardInput{VMID: theirs.ID, PublicPort: 20001, TargetPort: 22}, store.ErrNotFound, "vm_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.CreatePortForward(ctx, f.actor, f.tenant.ID, tc.in, fwdMin, fwdMax)
				if kindOf(err) != tc.want {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if e, ok := store.AsError(err); !ok || e.Field != tc.field {
					t.Errorf("field = %+v, want %q", e, tc.field)
				}
			})
		}
		if _, err := s.CreatePortForward(ctx, f.actor, f.tenant.ID, store.PortForwardInput{VMID: vm.ID, TargetPort: 22}, 30000, 20000); err == nil {
			t.Error("an inverted staff range was accepted")
		}
		if list, n, err := s.ListPortForwards(ctx, f.tenant.ID, store.Page{}); err != nil || n != 0 || len(list) != 0 {
			t.Fatalf("refused input left forwards: %v %d %v", list, n, err)
		}
	})
}

func TestPortForwardConflictsQuotaIsolation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "acme")
		other := setup(t, s, "globex")
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := s.CreateVM(ctx, other.actor, other.tenant.ID, order(other, "db", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		create := func(fx fixture, vmID string, public, target int) (store.PortForward, error) {
			return s.CreatePortForward(ctx, fx.actor, fx.tenant.ID, store.PortForwardInput{VMID: vmID, PublicPort: public, TargetPort: target}, fwdMin, fwdMax)
		}
		ssh, err := create(f, vm.ID, 20002, 22)
		if err != nil {
			t.Fatal(err)
		}
		if ssh.PublicPort != 20002 || ssh.Protocol != store.ProtocolTCP || ssh.VMName != "web" || ssh.CreatedBy != f.actor.Email {
			t.Errorf("forward = %+v", ssh)
		}
		// Another tenant asking for the same port is refused by name.
		_, err = create(other, theirs.ID, 20002, 5432)
		if kindOf(err) != store.ErrConflict || err.Error() != "public port 20002 is already forwarded" {
			t.Fatalf("conflict: %v", err)
		}
		// Auto-pick takes the lowest free port.
		auto, err := create(f, vm.ID, 0, 80)
		if err != nil || auto.PublicPort != 20000 {
			t.Fatalf("auto = %+v, %v", auto, err)
		}
		auto2, err := create(other, theirs.ID, 0, 5432)
		if err != nil || auto2.PublicPort != 20001 {
			t.Fatalf("auto2 = %+v, %v", auto2, err)
		}

		// Quota: 3 for acme, with 2 in use.
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 16384, DiskGiB: 200, SSHKeys: 10, PortForwards: 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := create(f, vm.ID, 20005, 8080); err != nil {
			t.Fatal(err)
		}
		_, err = create(f, vm.ID, 20006, 8081)
		if kindOf(err) != store.ErrQuota || !strings.Contains(err.Error(), "allows 3 port forwards") {
			t.Fatalf("over quota: %v", err)
		}

		// Isolation: lists, deletes and exposure only see one's own.
		list, n, err := s.ListPortForwards(ctx, f.tenant.ID, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		got := []int{}
		for _, pf := range list {
			got = append(got, pf.PublicPort)
		}
		if diff := cmp.Diff([]int{20000, 20002, 20005}, got); diff != "" || n != 3 {
			t.Errorf("acme forwards (n=%d) (-want +got):\n%s", n, diff)
		}
		if err := s.DeletePortForward(ctx, other.actor, other.tenant.ID, ssh.ID); kindOf(err) != store.ErrNotFound {
			t.Fatalf("delete another tenant's forward: %v", err)
		}
		if _, err := s.SetVMExposure(ctx, other.actor, other.tenant.ID, vm.ID, ptr(true), nil, nil); kindOf(err) != store.ErrNotFound {
			t.Fatalf("expose another tenant's vm: %v", err)
		}
		if _, err := s.GetVMExposure(ctx, other.tenant.ID, vm.ID); kindOf(err) != store.ErrNotFound {
			t.Fatalf("read another tenant's exposure: %v", err)
		}
		if err := s.DeletePortForward(ctx, f.actor, f.tenant.ID, ssh.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePortForward(ctx, f.actor, f.tenant.ID, ssh.ID); kindOf(err) != store.ErrNotFound {
			t.Fatalf("delete twice: %v", err)
		}
		// The freed port and quota slot are usable again.
		if _, err := create(other, theirs.ID, 20002, 5432); err != nil {
			t.Fatalf("reuse a freed port: %v", err)
		}
		if _, err := create(f, vm.ID, 20006, 8081); err != nil {
			t.Fatalf("within quota after a delete: %v", err)
		}
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "forward."}, store.Page{PerPage: 100})
		if err != nil || len(entries) < 6 {
			t.Fatalf("audit: %d entries, %v", len(entries), err)
		}
	})
}

func TestPortForwardConcurrentAutoPick(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var fx []fixture
		var vms []store.VM
		for _, name := range []string{"t1", "t2", "t3", "t4"} {
			f := setup(t, s, name)
			vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "nano"))
			if err != nil {
				t.Fatal(err)
			}
			fx, vms = append(fx, f), append(vms, vm)
		}
		var wg sync.WaitGroup
		ports := make(chan int, 20)
		for i := range 4 {
			for range 3 {
				wg.Go(func() {
					pf, err := s.CreatePortForward(ctx, fx[i].actor, fx[i].tenant.ID, store.PortForwardInput{VMID: vms[i].ID, TargetPort: 22}, fwdMin, fwdMax)
					if err != nil {
						if kindOf(err) != store.ErrConflict {
							t.Errorf("create: %v", err)
						}
						return
					}
					ports <- pf.PublicPort
				})
			}
		}
		wg.Wait()
		close(ports)
		seen := map[int]bool{}
		for p := range ports {
			if seen[p] {
				t.Errorf("port %d given twice", p)
			}
			seen[p] = true
		}
		// 10 ports in the range, 12 asked for.
		if len(seen) != 10 {
			t.Errorf("%d ports given, want all 10", len(seen))
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestForwardRoutes(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		addLAN(t, s)
		f := setup(t, s, "Acme")
		other := setup(t, s, "globex")
		web := runningVM(t, s, f, "web")
		api := runningVM(t, s, f, "api")
		db := runningVM(t, s, other, "db")
		version := func() int64 {
			t.Helper()
			v, err := s.ForwardRoutesVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		routes := func() store.Routes {
			t.Helper()
			r, err := s.ForwardRoutes(ctx, "Cloud.Internal.")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		v0 := version()
		if v := version(); v != v0 {
			t.Fatalf("version moved without a change: %d → %d", v0, v)
		}
		r := routes()
		if r.Version != v0 || len(r.HTTP)+len(r.TLS)+len(r.TCP) != 0 {
			t.Fatalf("nothing published yet: %+v", r)
		}

		e, err := s.SetVMExposure(ctx, f.actor, f.tenant.ID, web.ID, ptr(true), ptr(true), nil)
		if err != nil || e != (store.Exposure{HTTP: true, HTTPS: true}) {
			t.Fatalf("expose web: %+v %v", e, err)
		}
		if _, err := s.SetVMExposure(ctx, f.actor, f.tenant.ID, api.ID, nil, ptr(true), ptr(true)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetVMExposure(ctx, other.actor, other.tenant.ID, db.ID, ptr(false), nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreatePortForward(ctx, other.actor, other.tenant.ID, store.PortForwardInput{VMID: db.ID, PublicPort: 20003, TargetPort: 5432}, fwdMin, fwdMax); err != nil {
			t.Fatal(err)
		}
		v1 := version()
		if v1 < v0+4 {
			t.Errorf("version %d after four changes from %d", v1, v0)
		}
		ap := func(vm store.VM, port uint16) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr(vm.IP), port)
		}
		want := store.Routes{
			Version: v1,
			HTTP:    map[string]netip.AddrPort{"web.acme.cloud.internal": ap(web, 80)},
			TLS: map[string]store.TLSTarget{
				"web.acme.cloud.internal": {Addr: ap(web, 443)},
				"api.acme.cloud.internal": {Addr: ap(api, 443), ProxyProtocol: true},
			},
			TCP: map[int]netip.AddrPort{20003: ap(db, 5432)},
			Cut: map[netip.Addr]bool{},
		}
		cmpAddr := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
		if diff := cmp.Diff(want, routes(), cmpAddr); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}

		// A VM that stops leaves the table, and the version notices
		// although the lifecycle knows nothing of forwards.
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, web.ID, store.OpStop); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, "worker", time.Minute)
		if err := s.SetVMState(ctx, web.ID, "worker", store.VMStopped, ""); err != nil {
			t.Fatal(err)
		}
		v2 := version()
		if v2 <= v1 {
			t.Fatalf("version %d after a vm stopped, was %d", v2, v1)
		}
		if v := version(); v != v2 {
			t.Fatalf("version moved twice for one change: %d → %d", v2, v)
		}
		got := routes()
		if _, ok := got.HTTP["web.acme.cloud.internal"]; ok || len(got.TLS) != 1 {
			t.Errorf("stopped vm still routed: %+v", got)
		}

		// Suspending a tenant takes its routes out and lists its VMs
		// for the forwarders to cut; lifting the suspension restores them.
		staff := store.Actor{Email: "staff@example.com"}
		if err := s.SuspendTenant(ctx, staff, other.tenant.ID, "unpaid invoice"); err != nil {
			t.Fatal(err)
		}
		v3 := version()
		if v3 <= v2 {
			t.Fatalf("version %d after a suspension, was %d", v3, v2)
		}
		got = routes()
		if _, ok := got.TCP[20003]; ok || !got.Cut[netip.MustParseAddr(db.IP)] || len(got.Cut) != 1 || len(got.TLS) != 1 {
			t.Errorf("suspended tenant still routed or not cut: %+v", got)
		}
		if err := s.UnsuspendTenant(ctx, staff, other.tenant.ID); err != nil {
			t.Fatal(err)
		}
		if v := version(); v <= v3 {
			t.Fatalf("version %d after lifting a suspension, was %d", v, v3)
		}
		got = routes()
		if got.TCP[20003] != ap(db, 5432) || len(got.Cut) != 0 {
			t.Errorf("routes not restored after the suspension: %+v", got)
		}
	})
}
