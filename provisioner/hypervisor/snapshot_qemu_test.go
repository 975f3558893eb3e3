package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// snapshotDisk makes a test pool with a base volume and VM disk name on
// it (a 1 GiB qcow2 overlay), with 0x11 in the base image's first MiB and
// 0xab in the overlay's second, as a guest sees them. It returns the
// pool, its directory and the disk's path.
func snapshotDisk(t *testing.T, c *Conn, cx context.Context, name string) (pool, dir, disk string) {
	t.Helper()
	qemuIO := tool(t, "qemu-io", "qemu-utils")
	pool, dir = testPool(t)
	src, sum := image(t, "64M")
	if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
		t.Fatal(err)
	}
	disk, err := c.EnsureDisk(cx, pool, name, "base", 1)
	if err != nil {
		t.Fatal(err)
	}
	run(t, qemuIO, "-f", "qcow2", "-c", "write -P 0x11 0 1M", filepath.Join(dir, "base"))
	run(t, qemuIO, "-f", "qcow2", "-c", "write -P 0xab 1M 1M", disk)
	return pool, dir, disk
}

// TestQEMUSnapshotVolumes takes a snapshot of a VM disk (a qcow2 overlay
// on a base image) into the same pool, changes the disk, restores the
// snapshot over it, makes a new VM's disk from it and deletes the snapshot, checking the contents with
// qemu-io and qemu-img at each step.
func TestQEMUSnapshotVolumes(t *testing.T) {
	c := dial(t, "qemu:///system")
	cx := ctx(t, 120*time.Second)
	pool, dir, disk := snapshotDisk(t, c, cx, "vm-1")
	qemuImg := tool(t, "qemu-img", "qemu-utils")
	qemuIO := tool(t, "qemu-io", "qemu-utils")

	size, err := c.CopyVolume(cx, pool, "vm-1", "snap-1")
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snap-1")
	if size <= 0 {
		t.Errorf("snapshot size %d", size)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
	}
	if err := json.Unmarshal([]byte(run(t, qemuImg, "info", "-U", "--output=json", snap)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 1<<30 || info.Backing != "" {
		t.Errorf("snapshot is %+v; want a self-contained 1 GiB qcow2", info)
	}
	run(t, qemuImg, "compare", "-U", disk, snap)
	// Taken again (an interrupted take): replaced, the same.
	if _, err := c.CopyVolume(cx, pool, "vm-1", "snap-1"); err != nil {
		t.Fatal(err)
	}
	if out := run(t, qemuIO, "-f", "qcow2", "-r", "-c", "read -P 0x11 0 1M", "-c", "read -P 0xab 1M 1M", snap); strings.Contains(out, "failed") {
		t.Errorf("snapshot does not hold the disk's data:\n%s", out)
	}

	// The guest writes after the snapshot; the restore brings the disk back.
	run(t, qemuIO, "-f", "qcow2", "-c", "write -P 0xcd 1M 1M", disk)
	for i := range 2 {
		if err := c.ReplaceVolume(cx, pool, "snap-1", "vm-1"); err != nil {
			t.Fatalf("ReplaceVolume #%d: %v", i+1, err)
		}
	}
	out := run(t, qemuIO, "-f", "qcow2", "-r", "-c", "read -P 0xab 1M 1M", "-c", "read -P 0x11 0 1M", disk)
	if strings.Contains(out, "failed") {
		t.Errorf("restored disk does not hold the snapshot's data:\n%s", out)
	}
	if err := c.ReplaceVolume(cx, pool, "no-such-snapshot", "vm-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReplaceVolume from a missing snapshot = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(disk); err != nil {
		t.Errorf("a refused restore removed the disk: %v", err)
	}

	// A new VM from the snapshot: a copy grown to its plan, with the
	// snapshot's data and no backing file.
	if _, err := c.CopyVolume(cx, pool, "snap-1", "vm-2"); err != nil {
		t.Fatal(err)
	}
	copied, err := c.GrowDisk(cx, pool, "vm-2", 2)
	if err != nil {
		t.Fatal(err)
	}
	info.Backing = ""
	if err := json.Unmarshal([]byte(run(t, qemuImg, "info", "-U", "--output=json", copied)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 2<<30 || info.Backing != "" {
		t.Errorf("disk from the snapshot is %+v; want a self-contained 2 GiB qcow2", info)
	}
	if out := run(t, qemuIO, "-f", "qcow2", "-r", "-c", "read -P 0x11 0 1M", "-c", "read -P 0xab 1M 1M", copied); strings.Contains(out, "failed") {
		t.Errorf("disk from the snapshot does not hold the snapshot's data:\n%s", out)
	}
	if _, err := c.DeleteDisk(cx, pool, "vm-2"); err != nil {
		t.Fatal(err)
	}

	if _, err := c.DeleteDisk(cx, pool, "snap-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot volume still there: %v", err)
	}
	for _, v := range []string{"vm-1", "base"} {
		if _, err := c.DeleteDisk(cx, pool, v); err != nil {
			t.Error(err)
		}
	}
}

// TestQEMULiveSnapshot copies the disk of a running QEMU guest into a
// snapshot volume while it keeps running: the copy holds what the guest
// had written when it was taken (through the disk's backing chain) and
// not what it writes afterwards, and the guest never stops.
func TestQEMULiveSnapshot(t *testing.T) {
	c := dial(t, "qemu:///system")
	cx := ctx(t, 120*time.Second)
	pool, dir, disk := snapshotDisk(t, c, cx, "vm-live")
	qemuImg := tool(t, "qemu-img", "qemu-utils")
	qemuIO := tool(t, "qemu-io", "qemu-utils")
	spec := DomainSpec{
		Name: unique("fibrix-test-live-"), UUID: uuid.NewString(),
		VCPUs: 1, MemoryMiB: 64, Type: TypeQEMU, DiskPath: disk,
	}
	t.Cleanup(func() {
		cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Destroy(cx, spec.Name)
		_ = c.Undefine(cx, spec.Name)
	})
	if err := c.Define(cx, spec); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(cx, spec.Name); err != nil {
		t.Fatal(err)
	}
	// The guest's own writes, through QEMU's block layer while it runs.
	guestWrite := func(pattern, offset string) {
		t.Helper()
		dom, _, err := c.lookup(cx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		cmd := fmt.Sprintf(`qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P %s %s 1M"`, pattern, offset)
		out, err := c.lv.QEMUDomainMonitorCommand(dom, cmd, 1) // 1: a human monitor command
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("guest write %s at %s: %v %q", pattern, offset, err, out)
		}
	}
	guestWrite("0xcd", "2M")

	taken, err := c.LiveSnapshot(cx, spec.Name, pool, "vm-live", "snap-live")
	if err != nil {
		t.Fatal(err)
	}
	guestWrite("0xef", "2M")
	if s, err := c.State(cx, spec.Name); err != nil || s != Running {
		t.Fatalf("guest after the live snapshot: %v %v, want running", s, err)
	}
	// The domain has an agent channel but no agent answers on it.
	if taken.Frozen || !strings.Contains(taken.FreezeError, "not frozen") {
		t.Errorf("live snapshot without an agent = %+v; want not frozen, with the reason", taken)
	}
	snap := filepath.Join(dir, "snap-live")
	if taken.SizeBytes < 3<<20 {
		t.Errorf("snapshot takes %d bytes; want at least the 3 MiB written", taken.SizeBytes)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
	}
	if err := json.Unmarshal([]byte(run(t, qemuImg, "info", "-U", "--output=json", snap)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 1<<30 || info.Backing != "" {
		t.Errorf("snapshot is %+v; want a self-contained 1 GiB qcow2", info)
	}
	read := func(path string, checks ...string) string {
		args := []string{"-f", "qcow2", "-r", "-U"}
		for _, c := range checks {
			args = append(args, "-c", c)
		}
		return run(t, qemuIO, append(args, path)...)
	}
	if out := read(snap, "read -P 0x11 0 1M", "read -P 0xab 1M 1M", "read -P 0xcd 2M 1M"); strings.Contains(out, "failed") {
		t.Errorf("snapshot does not hold the disk as it was when taken:\n%s", out)
	}
	if out := read(disk, "read -P 0xef 2M 1M"); strings.Contains(out, "failed") {
		t.Errorf("the guest's write after the snapshot is not on its disk:\n%s", out)
	}

	// Taken again (as after an interrupted take): replaced, now with the later write.
	if _, err := c.LiveSnapshot(cx, spec.Name, pool, "vm-live", "snap-live"); err != nil {
		t.Fatal(err)
	}
	if out := read(snap, "read -P 0xef 2M 1M", "read -P 0x11 0 1M"); strings.Contains(out, "failed") {
		t.Errorf("second snapshot does not hold the later write:\n%s", out)
	}

	// Refusals leave no partial volume behind.
	if _, err := c.LiveSnapshot(cx, "no-such-domain", pool, "vm-live", "snap-x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("live snapshot of an unknown domain = %v, want ErrNotFound", err)
	}
	if err := c.Destroy(cx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LiveSnapshot(cx, spec.Name, pool, "vm-live", "snap-x"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("live snapshot of a stopped domain = %v; want ErrNotRunning", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snap-x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused live snapshot left its volume: %v", err)
	}
	for _, v := range []string{"snap-live", "vm-live", "base"} {
		if _, err := c.DeleteDisk(cx, pool, v); err != nil {
			t.Error(err)
		}
	}
}
