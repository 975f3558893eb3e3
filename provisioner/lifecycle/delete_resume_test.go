package lifecycle_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// A delete must finish whatever part of it already happened: a domain that
// is gone (deleted before it was defined, or removed by an interrupted
// pass), and a pass that died after giving the host's capacity back.
func TestDeleteResumes(t *testing.T) {
	for name, interrupt := range map[string]func(r *rig, vmID string){
		"domain gone": func(r *rig, vmID string) {},
		"capacity already released": func(r *rig, vmID string) {
			if err := r.st.ReleaseIP(context.Background(), vmID); err != nil {
				r.t.Fatal(err)
			}
			if err := r.st.ReleaseHostCapacity(context.Background(), vmID); err != nil {
				r.t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, filepath.Join(t.TempDir(), "fibrix.db"))
			ctx := context.Background()
			vm, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "web", Plan: "nano", Image: r.image.ID, SSHKeys: []string{r.key.ID}})
			if err != nil {
				t.Fatal(err)
			}
			r.waitState(vm.ID, store.VMRunning)
			hv, err := r.pool.Conn(ctx, r.host)
			if err != nil {
				t.Fatal(err)
			}
			if err := hv.Destroy(ctx, "fibrix-"+vm.ID); err != nil {
				t.Fatal(err)
			}
			if err := hv.Undefine(ctx, "fibrix-"+vm.ID); err != nil {
				t.Fatal(err)
			}
			interrupt(r, vm.ID)
			r.act(vm.ID, store.OpDelete)
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				d, err := r.st.GetVM(ctx, "", vm.ID)
				if err != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("VM not deleted: state %s, last error %q", d.State, d.LastError)
				}
			}
			h, err := r.st.GetHost(ctx, r.host.ID)
			if err != nil {
				t.Fatal(err)
			}
			if h.AllocVCPUs != 0 || h.AllocMemoryMiB != 0 || h.AllocDiskGiB != 0 {
				t.Errorf("host ledger after delete: %d vCPU, %d MiB, %d GiB", h.AllocVCPUs, h.AllocMemoryMiB, h.AllocDiskGiB)
			}
		})
	}
}
