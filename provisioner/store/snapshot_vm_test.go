package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// runningVMFrom brings a just-ordered VM to running as the provisioner would.
func runningVMFrom(t *testing.T, s *store.Store, vm store.VM) store.VM {
	t.Helper()
	ctx := context.Background()
	if _, err := s.AllocateIP(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if got := mustClaim(t, s, "worker", time.Minute); got.ID != vm.ID {
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

func TestCreateVMFromSnapshot(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "fromsnap")
		rival := setup(t, s, "rivalsnap")
		onlyHosts(t, s)
		// 4 vCPU, 1.5 GiB: room for three nanos: the source, the rival's and one copy.
		tight := addHost(t, s, store.HostInput{Name: "tight-kvm"}, store.Facts{CPUModel: "x", Cores: 1, MemoryMiB: 1536, DiskGiB: 500, DiskFreeGiB: 500})
		addLAN(t, s)
		src := runningVM(t, s, f, "web")
		rvm := runningVM(t, s, rival, "theirs")
		snap := readySnapshot(t, s, f, src, "gold", 1<<30)
		creating, _, err := s.CreateSnapshot(ctx, f.actor, f.tenant.ID, src.ID, "later")
		if err != nil {
			t.Fatal(err)
		}
		finishOp(t, s, src.ID)
		// A roomy host the new VMs must not go to.
		addHost(t, s, store.HostInput{Name: "spare-kvm"}, roomy)
		if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, store.Quota{Instances: 10, VCPUs: 20, MemoryMiB: 1 << 20, DiskGiB: 1000, SSHKeys: 5, Snapshots: 5, SnapshotGiB: 100}); err != nil {
			t.Fatal(err)
		}
		rivalSnap := readySnapshot(t, s, rival, rvm, "theirs", 1<<30)

		from := func(name, plan, snapID string) store.VMOrder {
			return store.VMOrder{Name: name, Plan: plan, Snapshot: snapID, SSHKeys: []string{f.key.ID}}
		}
		hostBefore, err := s.GetHost(ctx, tight.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, before, _ := s.ListVMs(ctx, f.tenant.ID, store.Page{})
		for _, tc := range []struct {
			name  string
			o     store.VMOrder
			kind  error
			field string
			msg   string
		}{
			{"both image and snapshot", store.VMOrder{Name: "a", Plan: "nano", Image: f.image.Name, Snapshot: snap.ID, SSHKeys: []string{f.key.ID}}, store.ErrInvalid, "snapshot", "not both"},
			{"neither", store.VMOrder{Name: "a", Plan: "nano", SSHKeys: []string{f.key.ID}}, store.ErrInvalid, "image", "image or a snapshot"},
			{"unknown snapshot", from("a", "nano", "nope"), store.ErrInvalid, "snapshot", "no such snapshot"},
			{"another tenant's snapshot", from("a", "nano", rivalSnap.ID), store.ErrInvalid, "snapshot", "no such snapshot"},
			{"snapshot not ready", from("a", "nano", creating.ID), store.ErrInvalid, "snapshot", "is creating"},
			{"no room on the snapshot's host", from("a", "small", snap.ID), store.ErrNoCapacity, "plan", "host tight-kvm has 512 MiB RAM free, the plan needs 2 GiB"},
		} {
			_, err := s.CreateVM(ctx, f.actor, f.tenant.ID, tc.o)
			var se *store.Error
			if !errors.Is(err, tc.kind) || !errors.As(err, &se) || se.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s: %v, want %v on %s saying %q", tc.name, err, tc.kind, tc.field, tc.msg)
			}
		}
		_, after, _ := s.ListVMs(ctx, f.tenant.ID, store.Page{})
		hostAfter, _ := s.GetHost(ctx, tight.ID)
		if after != before || hostAfter.AllocMemoryMiB != hostBefore.AllocMemoryMiB || hostAfter.AllocVCPUs != hostBefore.AllocVCPUs {
			t.Fatalf("refusals changed something: %d VMs (was %d), host %+v (was %+v)", after, before, hostAfter.Host, hostBefore.Host)
		}

		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, from("copy", "nano", snap.ID))
		if err != nil {
			t.Fatal(err)
		}
		if vm.HostID == nil || *vm.HostID != tight.ID || vm.SourceSnapshotID != snap.ID || vm.ImageID != src.ImageID || vm.DiskGiB != 10 {
			t.Errorf("vm from snapshot %+v, want on %s from %s", vm, tight.ID, snap.ID)
		}
		// The snapshot's host is full now; the roomy host does not help.
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, from("copy-2", "nano", snap.ID)); !errors.Is(err, store.ErrNoCapacity) {
			t.Errorf("second copy on a full host: %v, want ErrNoCapacity", err)
		}
		// While its disk is not copied, neither the snapshot nor its VM may go.
		if _, err := s.DeleteSnapshot(ctx, f.actor, f.tenant.ID, src.ID, snap.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("delete the snapshot being copied: %v, want ErrConflict", err)
		}
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, src.ID, store.OpDelete); !errors.Is(err, store.ErrConflict) {
			t.Errorf("delete the VM of the snapshot being copied: %v, want ErrConflict", err)
		}
		if got, _ := s.GetSnapshot(ctx, f.tenant.ID, src.ID, snap.ID); got.State != store.SnapshotReady {
			t.Errorf("refused delete changed the snapshot: %+v", got)
		}

		// A host in maintenance takes no VM from its snapshots.
		h := hostAfter.Host
		if _, err := s.UpdateHost(ctx, staff, h.ID, store.HostSettings{CPURatio: h.CPURatio, MemoryRatio: h.MemoryRatio, DiskRatio: h.DiskRatio,
			Maintenance: true, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		_, err = s.CreateVM(ctx, f.actor, f.tenant.ID, from("copy-3", "nano", snap.ID))
		var se *store.Error
		if !errors.Is(err, store.ErrNoCapacity) || !errors.As(err, &se) || se.Field != "snapshot" || !strings.Contains(err.Error(), "tight-kvm takes no new VMs") {
			t.Errorf("snapshot's host in maintenance: %v", err)
		}
	})
}

func TestCreateVMFromSnapshotDiskSize(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "snapdisk")
		addLAN(t, s)
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "big", "small"))
		if err != nil {
			t.Fatal(err)
		}
		src := runningVMFrom(t, s, vm)
		snap := readySnapshot(t, s, f, src, "gold", 1<<30)
		_, err = s.CreateVM(ctx, f.actor, f.tenant.ID, store.VMOrder{Name: "copy", Plan: "nano", Snapshot: snap.ID, SSHKeys: []string{f.key.ID}})
		var se *store.Error
		if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &se) || se.Field != "plan" || !strings.Contains(err.Error(), "20 GiB disk") {
			t.Errorf("plan smaller than the snapshot's disk: %v", err)
		}
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, store.VMOrder{Name: "copy", Plan: "small", Snapshot: snap.ID, SSHKeys: []string{f.key.ID}}); err != nil {
			t.Errorf("plan as large as the snapshot's disk: %v", err)
		}
	})
}
