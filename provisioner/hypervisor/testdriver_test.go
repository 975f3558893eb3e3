package hypervisor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// Tests against libvirt's test driver (test:///default): a simulated
// hypervisor inside the real libvirtd, fast and without guests. Its state
// lives as long as the connection.

func TestTestDriverFacts(t *testing.T) {
	c := dial(t, "test:///default")
	f, err := c.Facts(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("facts: %+v", f)
	// The test driver's fixed node: 2 NUMA cells x 2 sockets x 2 cores x 2 threads, 3 GiB.
	if f.Threads != 16 || f.Cores != 8 || f.MemoryMiB != 3072 {
		t.Errorf("Facts = %d threads, %d cores, %d MiB; want 16, 8, 3072", f.Threads, f.Cores, f.MemoryMiB)
	}
	if f.CPUModel == "" || f.Arch == "" {
		t.Errorf("Facts: empty CPU model %q or arch %q", f.CPUModel, f.Arch)
	}
	var pool *PoolFacts
	for i := range f.Pools {
		if f.Pools[i].Name == "default-pool" {
			pool = &f.Pools[i]
		}
	}
	if pool == nil {
		t.Fatalf("Facts.Pools = %+v: no default-pool", f.Pools)
	}
	if pool.CapacityGiB <= 0 || pool.AvailableGiB <= 0 || pool.AvailableGiB > pool.CapacityGiB || pool.Path == "" {
		t.Errorf("default-pool facts not sane: %+v", *pool)
	}
}

func TestTestDriverLifecycle(t *testing.T) {
	c := dial(t, "test:///default")
	cx := ctx(t, 20*time.Second)
	spec := DomainSpec{
		Name: unique("fibrix-life-"), UUID: uuid.NewString(), VCPUs: 1, MemoryMiB: 128, Type: TypeQEMU,
	}
	var got []DomainState
	state := func() {
		t.Helper()
		s, err := c.State(cx, spec.Name)
		if err != nil {
			t.Fatalf("State: %v", err)
		}
		got = append(got, s)
	}
	step := func(name string, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		state()
	}
	name := spec.Name
	state()
	step("Define", func() error { return c.Define(cx, spec) })
	spec.MemoryMiB = 256
	step("Define again (redefine)", func() error { return c.Define(cx, spec) })
	step("Start", func() error { return c.Start(cx, name) })
	step("Start again", func() error { return c.Start(cx, name) })
	step("Reboot", func() error { return c.Reboot(cx, name) })
	step("Shutdown", func() error { return c.Shutdown(cx, name) })
	step("Shutdown again", func() error { return c.Shutdown(cx, name) })
	step("Start", func() error { return c.Start(cx, name) })
	step("Destroy", func() error { return c.Destroy(cx, name) })
	step("Destroy again", func() error { return c.Destroy(cx, name) })
	step("Undefine", func() error { return c.Undefine(cx, name) })
	step("Undefine again", func() error { return c.Undefine(cx, name) })

	want := []DomainState{Absent, ShutOff, ShutOff, Running, Running, Running, ShutOff, ShutOff, Running, ShutOff, ShutOff, Absent, Absent}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}

	if err := c.Start(cx, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start(absent) = %v, want ErrNotFound", err)
	}
	other := spec
	other.UUID = uuid.NewString()
	if err := c.Define(cx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Undefine(t.Context(), name) })
	if err := c.Define(cx, other); err == nil {
		t.Error("Define with the same name and another UUID succeeded")
	} else {
		t.Logf("Define with another UUID: %v", err)
	}
}

func TestTestDriverStorage(t *testing.T) {
	c := dial(t, "test:///default")
	cx := ctx(t, 20*time.Second)
	const pool = "default-pool"
	disk, base := unique("disk-"), unique("base-")

	// The test driver keeps volumes in memory: no image upload, no
	// backing files, no wipe. It checks the calls and their idempotence.
	if _, err := c.EnsureDisk(cx, pool, disk, "no-such-base", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("EnsureDisk(missing base) = %v, want ErrNotFound", err)
	}
	if _, err := c.EnsureDisk(cx, "no-such-pool", disk, base, 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("EnsureDisk(missing pool) = %v, want ErrNotFound", err)
	}
	if _, err := c.DeleteDisk(cx, "no-such-pool", disk); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteDisk(missing pool) = %v, want ErrNotFound", err)
	}
	if _, err := c.EnsureDisk(cx, pool, disk, base, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("EnsureDisk(0 GiB) = %v, want ErrInvalid", err)
	}

	p, err := c.pool(cx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.lv.StorageVolCreateXML(p, `<volume><name>`+base+`</name><capacity unit="GiB">1</capacity></volume>`, 0); err != nil {
		t.Fatalf("create base volume on the test driver: %v", err)
	}
	t.Cleanup(func() { _, _ = c.DeleteDisk(context.Background(), pool, base) })
	path1, err := c.EnsureDisk(cx, pool, disk, base, 10)
	if err != nil {
		t.Skipf("test driver refuses overlays (covered on qemu:///system): %v", err)
	}
	path2, err := c.EnsureDisk(cx, pool, disk, base, 10)
	if err != nil || path2 != path1 {
		t.Errorf("EnsureDisk again = %q, %v; want %q, nil", path2, err, path1)
	}
	for i, wantOK := range []bool{true, false} {
		wiped, err := c.DeleteDisk(cx, pool, disk)
		if err != nil {
			t.Fatalf("DeleteDisk #%d: %v", i+1, err)
		}
		t.Logf("DeleteDisk #%d: wiped=%v", i+1, wiped)
		if !wantOK && wiped {
			t.Errorf("DeleteDisk of an absent volume reported a wipe")
		}
	}
	if _, ok, err := c.volume(cx, p, disk); err != nil || ok {
		t.Errorf("volume after DeleteDisk: present=%v, err=%v", ok, err)
	}
}

func TestCanceledContext(t *testing.T) {
	c := dial(t, "test:///default")
	cx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.State(cx, "any"); !errors.Is(err, context.Canceled) {
		t.Errorf("State(canceled ctx) = %v, want context.Canceled", err)
	}
	if _, err := Dial(cx, Config{URI: "test:///default"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial(canceled ctx) = %v, want context.Canceled", err)
	}
}
