package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

var staff = store.Actor{UserID: "staff-1", Email: "staff@example.com", IP: "192.0.2.9"}

// roomy is a host no test fills by accident.
var roomy = store.Facts{CPUModel: "fixture", Cores: 256, MemoryMiB: 4 << 20, DiskGiB: 1 << 20, DiskFreeGiB: 1 << 20}

// addHost registers a host and records its facts, making it ready: the two
// calls discovery makes for a real host.
func addHost(t testing.TB, s *store.Store, in store.HostInput, f store.Facts) store.Host {
	t.Helper()
	ctx := context.Background()
	if in.URI == "" {
		in.URI = "test:///default"
	}
	h, err := s.CreateHost(ctx, staff, in)
	if err != nil {
		t.Fatalf("create host %s: %v", in.Name, err)
	}
	if err := s.RecordHostFacts(ctx, h.ID, f, ""); err != nil {
		t.Fatalf("record facts of %s: %v", in.Name, err)
	}
	return h
}

// onlyHosts removes every host (none may hold VMs) so a test controls the fleet.
func onlyHosts(t testing.TB, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	hosts, err := s.ListHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := s.DeleteHost(ctx, staff, h.ID); err != nil {
			t.Fatalf("delete host %s: %v", h.Name, err)
		}
	}
}

func TestHostValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		h, err := s.CreateHost(ctx, staff, store.HostInput{Name: " KVM-1 ", URI: "qemu+ssh://root@kvm-1.example.net/system"})
		if err != nil {
			t.Fatal(err)
		}
		want := store.Host{Name: "kvm-1", URI: "qemu+ssh://root@kvm-1.example.net/system", Enabled: true, State: store.HostNew,
			StoragePool: "default", CPURatio: 4, MemoryRatio: 1, DiskRatio: 1}
		if diff := cmp.Diff(want, h, cmpopts.IgnoreFields(store.Host{}, "ID", "CreatedAt", "UpdatedAt")); diff != "" {
			t.Errorf("created host (-want +got):\n%s", diff)
		}
		for _, tc := range []struct {
			name  string
			in    store.HostInput
			kind  error
			field string
		}{
			{"duplicate name", store.HostInput{Name: "kvm-1", URI: "test:///default"}, store.ErrConflict, "name"},
			{"bad name", store.HostInput{Name: "kvm_1", URI: "test:///default"}, store.ErrInvalid, "name"},
			{"empty uri", store.HostInput{Name: "kvm-2"}, store.ErrInvalid, "uri"},
			{"http uri", store.HostInput{Name: "kvm-2", URI: "http://kvm-2/"}, store.ErrInvalid, "uri"},
			{"qemu+tcp uri", store.HostInput{Name: "kvm-2", URI: "qemu+tcp://kvm-2/system"}, store.ErrInvalid, "uri"},
			{"ssh without host", store.HostInput{Name: "kvm-2", URI: "qemu+ssh:///system"}, store.ErrInvalid, "uri"},
			{"password in uri", store.HostInput{Name: "kvm-2", URI: "qemu+ssh://root:pw@kvm-2/system"}, store.ErrInvalid, "uri"},
			{"remote qemu", store.HostInput{Name: "kvm-2", URI: "qemu://kvm-2/system"}, store.ErrInvalid, "uri"},
			{"cpu ratio low", store.HostInput{Name: "kvm-2", URI: "test:///default", CPURatio: 0.9}, store.ErrInvalid, "cpu_ratio"},
			{"cpu ratio high", store.HostInput{Name: "kvm-2", URI: "test:///default", CPURatio: 16.5}, store.ErrInvalid, "cpu_ratio"},
			{"memory ratio low", store.HostInput{Name: "kvm-2", URI: "test:///default", MemoryRatio: 0.4}, store.ErrInvalid, "memory_ratio"},
			{"memory ratio high", store.HostInput{Name: "kvm-2", URI: "test:///default", MemoryRatio: 4.1}, store.ErrInvalid, "memory_ratio"},
			{"disk ratio high", store.HostInput{Name: "kvm-2", URI: "test:///default", DiskRatio: 11}, store.ErrInvalid, "disk_ratio"},
			{"negative reserved cores", store.HostInput{Name: "kvm-2", URI: "test:///default", ReservedCores: -1}, store.ErrInvalid, "reserved_cores"},
			{"negative reserved memory", store.HostInput{Name: "kvm-2", URI: "test:///default", ReservedMemoryMiB: -1}, store.ErrInvalid, "reserved_memory_mib"},
			{"negative reserved disk", store.HostInput{Name: "kvm-2", URI: "test:///default", ReservedDiskGiB: -1}, store.ErrInvalid, "reserved_disk_gib"},
			{"bad bridge", store.HostInput{Name: "kvm-2", URI: "test:///default", Bridge: "br0; reboot"}, store.ErrInvalid, "bridge"},
		} {
			_, err := s.CreateHost(ctx, staff, tc.in)
			e, ok := store.AsError(err)
			if !ok || !errors.Is(err, tc.kind) || e.Field != tc.field {
				t.Errorf("%s: err = %v, want %v on %q", tc.name, err, tc.kind, tc.field)
			}
		}
		for name, uri := range map[string]string{"lab": "test:///default", "local": "qemu:///system", "kvm-3": "qemu+ssh://kvm-3.example.net:2222/system?keyfile=/x"} {
			if _, err := s.CreateHost(ctx, staff, store.HostInput{Name: name, URI: uri}); err != nil {
				t.Errorf("uri %s: %v", uri, err)
			}
		}
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "host.create", Result: store.ResultSuccess}, store.Page{})
		if err != nil || len(entries) != 4 || entries[3].TargetName != "kvm-1" || entries[3].ActorEmail != staff.Email {
			t.Errorf("audit host.create: %d entries, %v", len(entries), err)
		}
		if _, err := s.UpdateHost(ctx, staff, h.ID, store.HostSettings{CPURatio: 4, MemoryRatio: 0, DiskRatio: 1}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("update with zero memory ratio: %v", err)
		}
		if _, err := s.UpdateHost(ctx, staff, "nope", store.HostSettings{CPURatio: 4, MemoryRatio: 1, DiskRatio: 1}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update unknown host: %v", err)
		}
	})
}

func TestHostFactsAndFigures(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		h, err := s.CreateHost(ctx, staff, store.HostInput{Name: "kvm-1", URI: "test:///default", CPURatio: 2, MemoryRatio: 1.5, DiskRatio: 0.5,
			ReservedCores: 2, ReservedMemoryMiB: 2048, ReservedDiskGiB: 50})
		if err != nil {
			t.Fatal(err)
		}
		facts := store.Facts{CPUModel: "EPYC", Cores: 16, MemoryMiB: 65536, DiskGiB: 1000, DiskFreeGiB: 900}
		if err := s.RecordHostFacts(ctx, h.ID, facts, "ssh-ed25519 AAAAkey1"); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetHost(ctx, "kvm-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.HostReady || got.RefreshedAt == nil || got.CPUModel != "EPYC" || got.SSHHostKey != "ssh-ed25519 AAAAkey1" || got.DiskFreeGiB != 900 {
			t.Errorf("after facts: %+v", got.Host)
		}
		want := capacity.Figures{
			CPU:    capacity.Figure{Physical: 16, Ratio: 2, Capacity: 32, Reserved: 2, Free: 30},
			Memory: capacity.Figure{Physical: 65536, Ratio: 1.5, Capacity: 98304, Reserved: 2048, Free: 96256},
			Disk:   capacity.Figure{Physical: 1000, Ratio: 0.5, Capacity: 500, Reserved: 50, Free: 450},
		}
		if diff := cmp.Diff(want, got.Figures); diff != "" {
			t.Errorf("figures (-want +got):\n%s", diff)
		}
		// The SSH host key is pinned on first use.
		if err := s.RecordHostFacts(ctx, h.ID, facts, "ssh-ed25519 AAAAother"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("facts with another host key: %v", err)
		}
		if err := s.RecordHostFacts(ctx, h.ID, facts, ""); err != nil {
			t.Errorf("facts without a key keep the pinned one: %v", err)
		}
		if err := s.RecordHostFacts(ctx, h.ID, store.Facts{Cores: -1}, ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("negative facts: %v", err)
		}
		if err := s.RecordHostError(ctx, h.ID, "connection refused"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetHost(ctx, h.ID); got.State != store.HostError || got.LastError != "connection refused" {
			t.Errorf("after error: state %s, %q", got.State, got.LastError)
		}
		if err := s.RecordHostError(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("error on unknown host: %v", err)
		}
		if err := s.RecordHostFacts(ctx, "nope", facts, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("facts of unknown host: %v", err)
		}
		if err := s.RecordHostFacts(ctx, h.ID, facts, ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetHost(ctx, h.ID); got.State != store.HostReady || got.LastError != "" {
			t.Errorf("after recovery: state %s, %q", got.State, got.LastError)
		}
		if _, err := s.GetHost(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown host: %v", err)
		}
	})
}

func TestDeleteHostRefusedWhileInUse(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "hostdel")
		host, _ := s.GetHost(ctx, "fixture-kvm")
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web", "small"))
		if err != nil {
			t.Fatal(err)
		}
		err = s.DeleteHost(ctx, staff, host.ID)
		if !errors.Is(err, store.ErrConflict) || err.Error() != "fixture-kvm holds 1 VM; delete it first" {
			t.Errorf("delete host in use: %v", err)
		}
		if got, _ := s.GetHost(ctx, host.ID); got.VMs != 1 {
			t.Errorf("host VMs = %d, want 1", got.VMs)
		}
		if err := s.ReleaseHostCapacity(ctx, vm.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteHost(ctx, staff, host.ID); err != nil {
			t.Errorf("delete emptied host: %v", err)
		}
		if err := s.DeleteHost(ctx, staff, host.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		entries, _, _ := s.ListAudit(ctx, store.AuditFilter{Action: "host.delete"}, store.Page{})
		if len(entries) != 3 {
			t.Errorf("audit host.delete entries = %d, want 3", len(entries))
		}
	})
}
