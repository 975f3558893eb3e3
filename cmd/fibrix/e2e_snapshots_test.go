package main

import (
	"strings"
	"testing"
	"time"
)

// e2eSnapshots takes a snapshot of the running VM live (the guest agent
// freezes its file systems, the guest keeps running), writes a file in the
// guest, restores the snapshot and finds the file gone and the one
// written just before the snapshot there, with the VM's name, address and
// host keys unchanged; then deletes the snapshot.
func e2eSnapshots(t *testing.T, g *e2eGuest) {
	type snapshot struct {
		ID, Name, State, Consistency string
		SizeBytes                    int64 `json:"size_bytes"`
	}
	var taken struct {
		Snapshot  snapshot
		Operation struct{ ID string }
	}
	path := "/vms/" + g.vmID + "/snapshots"
	// The guest may still be booting from the step before. A file written
	// just before the snapshot, not synced: the guest agent's freeze
	// flushes it into the snapshot.
	bootID := strings.TrimSpace(g.ssh(t, "echo before-snapshot > ~/before-snapshot; cat /proc/sys/kernel/random/boot_id", 4*time.Minute))
	start := time.Now()
	g.cust.must("POST", path, map[string]any{"name": "e2e-before"}, &taken, 202)
	g.wait(t, taken.Operation.ID)
	var list struct{ Items []snapshot }
	g.cust.must("GET", path, nil, &list, 200)
	if len(list.Items) != 1 || list.Items[0].ID != taken.Snapshot.ID || list.Items[0].State != "ready" || list.Items[0].SizeBytes <= 0 {
		t.Fatalf("snapshots after the take: %+v", list.Items)
	}
	t.Logf("snapshot taken in %s: %d bytes, %s", time.Since(start).Round(time.Second), list.Items[0].SizeBytes, list.Items[0].Consistency)
	// Taken live: the guest agent froze the file systems for it, and the
	// guest never stopped (same boot).
	if c := list.Items[0].Consistency; c != "frozen" {
		t.Errorf("snapshot of the running guest is %q, want frozen (by the guest agent)", c)
	}
	if after := strings.TrimSpace(g.ssh(t, "cat /proc/sys/kernel/random/boot_id", time.Minute)); after != bootID {
		t.Errorf("the guest rebooted for the snapshot: boot id %s, was %s", after, bootID)
	}

	// Written after the snapshot: the restore must take it away.
	if out := g.ssh(t, "echo after-snapshot > ~/after-snapshot && sync && cat ~/after-snapshot", 4*time.Minute); strings.TrimSpace(out) != "after-snapshot" {
		t.Fatalf("writing the file in the guest: %q", out)
	}

	start = time.Now()
	var op struct{ ID string }
	g.cust.must("POST", path+"/"+taken.Snapshot.ID+"/restore", nil, &op, 202)
	vm := g.wait(t, op.ID)
	if vm.IP != g.ip || vm.Name != "e2e-web" {
		t.Errorf("restore changed the VM to %s at %s", vm.Name, vm.IP)
	}
	// The same host keys are pinned: they are on the restored disk.
	out := g.ssh(t, "if test -e ~/after-snapshot; then echo still-there; else echo gone; fi; cat ~/before-snapshot; hostname", 4*time.Minute)
	if lines := strings.Fields(out); len(lines) != 3 || lines[0] != "gone" || lines[1] != "before-snapshot" || lines[2] != "e2e-web" {
		t.Fatalf("after the restore the guest says %q, want the later file gone, the earlier one there, and its name", out)
	}
	t.Logf("restore → SSH with the file gone: %s", time.Since(start).Round(time.Second))

	g.cust.must("DELETE", path+"/"+taken.Snapshot.ID, nil, &op, 202)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		g.cust.must("GET", path, nil, &list, 200)
		if len(list.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot still listed two minutes after delete: %+v", list.Items)
		}
	}
	if vols := sh(t, "virsh", "-c", "qemu:///system", "vol-list", g.pool); strings.Contains(vols, taken.Snapshot.ID) {
		t.Errorf("the snapshot volume still exists after delete:\n%s", vols)
	}
}
