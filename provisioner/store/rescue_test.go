package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// rescueOf is what a password reset changes, as the metadata service sees it.
type rescueOf struct {
	Generation int
	Hash       string
	Pending    []string // outstanding operations
}

func rescueState(t *testing.T, s *store.Store, tenantID, vmID string) rescueOf {
	t.Helper()
	ctx := context.Background()
	tok, err := s.EnsureMetadataToken(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.MetadataByToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.GetVM(ctx, tenantID, vmID)
	if err != nil {
		t.Fatal(err)
	}
	r := rescueOf{Generation: m.RescueGeneration, Hash: m.RescuePasswordHash}
	for _, op := range d.Operations {
		if op.State == store.OpQueued || op.State == store.OpRunning {
			r.Pending = append(r.Pending, op.Type)
		}
	}
	return r
}

// TestResetVMPassword records the hash, counts a generation and queues a
// reboot in one go, and refuses, changing nothing, what a reboot refuses.
func TestResetVMPassword(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "rescue")
		other := setup(t, s, "rescueother")
		addLAN(t, s)
		vm := runningVM(t, s, f, "web")
		pending, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "new", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		const hash = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
		none := rescueOf{}

		for _, tc := range []struct {
			name           string
			actor          store.Actor
			tenantID, vmID string
			hash           string
			kind           error
		}{
			{"another tenant's VM", other.actor, other.tenant.ID, vm.ID, hash, store.ErrNotFound},
			{"unknown VM", f.actor, f.tenant.ID, "nope", hash, store.ErrNotFound},
			{"not running", f.actor, f.tenant.ID, pending.ID, hash, store.ErrInvalidTransition},
			{"not a hash", f.actor, f.tenant.ID, vm.ID, "hunter2", store.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.ResetVMPassword(ctx, tc.actor, tc.tenantID, tc.vmID, tc.hash); !errors.Is(err, tc.kind) {
					t.Errorf("reset: %v, want %v", err, tc.kind)
				}
				if got := rescueState(t, s, f.tenant.ID, vm.ID); !cmp.Equal(got, none) {
					t.Errorf("a refused reset changed the VM: %+v", got)
				}
			})
		}

		if err := s.SuspendTenant(ctx, staff, f.tenant.ID, "unpaid"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResetVMPassword(ctx, f.actor, f.tenant.ID, vm.ID, hash); !errors.Is(err, store.ErrSuspended) {
			t.Errorf("reset in a suspended tenant: %v, want suspended", err)
		}
		if got := rescueState(t, s, f.tenant.ID, vm.ID); !cmp.Equal(got, none) {
			t.Errorf("a refused reset changed the VM: %+v", got)
		}
		if err := s.UnsuspendTenant(ctx, staff, f.tenant.ID); err != nil {
			t.Fatal(err)
		}

		op, err := s.ResetVMPassword(ctx, f.actor, f.tenant.ID, vm.ID, hash)
		if err != nil {
			t.Fatal(err)
		}
		if op.Type != store.OpReboot || op.State != store.OpQueued || op.VMID != vm.ID {
			t.Errorf("reset queued %+v, want a reboot", op)
		}
		want := rescueOf{Generation: 1, Hash: hash, Pending: []string{store.OpReboot}}
		if diff := cmp.Diff(want, rescueState(t, s, f.tenant.ID, vm.ID)); diff != "" {
			t.Errorf("after reset (-want +got):\n%s", diff)
		}
		if _, err := s.ResetVMPassword(ctx, f.actor, f.tenant.ID, vm.ID, "$6$other$x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a second reset while the reboot is queued: %v, want conflict", err)
		}
		if diff := cmp.Diff(want, rescueState(t, s, f.tenant.ID, vm.ID)); diff != "" {
			t.Errorf("a refused second reset changed the VM (-want +got):\n%s", diff)
		}

		// A rebuild gives a fresh disk: the rescue password goes with the old one.
		finishOp(t, s, vm.ID)
		if _, err := s.RebuildVM(ctx, f.actor, f.tenant.ID, vm.ID, ""); err != nil {
			t.Fatal(err)
		}
		want = rescueOf{Generation: 1, Pending: []string{store.OpRebuild}}
		if diff := cmp.Diff(want, rescueState(t, s, f.tenant.ID, vm.ID)); diff != "" {
			t.Errorf("after rebuild (-want +got):\n%s", diff)
		}

		entries, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "vm.password_reset"}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var results []string
		for _, e := range entries {
			if strings.Contains(e.Detail, "$6$") {
				t.Errorf("the audit holds the hash: %q", e.Detail)
			}
			results = append(results, e.Result+": "+e.Detail)
		}
		wantAudit := []string{
			"failure: a reboot is already queued for this VM; wait for it to finish",
			"success: console password reset; the VM reboots",
		}
		if len(results) < 2 || !cmp.Equal(results[:2], wantAudit) {
			t.Errorf("audit of resets, newest first: %q", results)
		}
	})
}
