package hypervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// Tests against qemu:///system: real QEMU processes and qcow2 files.

// testPool defines and starts a directory storage pool in a temporary
// directory with virsh, and removes it afterwards. It returns the pool's
// name and directory.
func testPool(t *testing.T) (string, string) {
	t.Helper()
	virsh := tool(t, "virsh", "libvirt-clients")
	dir := hostDir(t)
	name := "fibrix-test-" + filepath.Base(filepath.Dir(dir))
	run(t, virsh, "-c", "qemu:///system", "pool-define-as", name, "dir", "--target", dir)
	t.Cleanup(func() { run(t, virsh, "-c", "qemu:///system", "pool-undefine", name) })
	run(t, virsh, "-c", "qemu:///system", "pool-start", name)
	t.Cleanup(func() { run(t, virsh, "-c", "qemu:///system", "pool-destroy", name) })
	return name, dir
}

// image makes a small qcow2 image and returns its path and SHA-256.
func image(t *testing.T, virtualSize string) (string, string) {
	t.Helper()
	qemuImg := tool(t, "qemu-img", "qemu-utils")
	p := filepath.Join(t.TempDir(), "base.qcow2")
	run(t, qemuImg, "create", "-q", "-f", "qcow2", p, virtualSize)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

func TestQEMUStorage(t *testing.T) {
	c := dial(t, "qemu:///system")
	cx := ctx(t, 60*time.Second)
	pool, dir := testPool(t)
	src, sum := image(t, "64M")
	basePath := filepath.Join(dir, "base")

	wrong := strings.Repeat("0", 64)
	if err := c.EnsureBaseVolume(cx, pool, "base", src, wrong); !errors.Is(err, ErrInvalid) {
		t.Errorf("EnsureBaseVolume(wrong sum) = %v, want ErrInvalid", err)
	}
	if err := c.EnsureBaseVolume(cx, pool, "base", src, "xyz"); !errors.Is(err, ErrInvalid) {
		t.Errorf("EnsureBaseVolume(malformed sum) = %v, want ErrInvalid", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("refused uploads left %v in the pool", ents)
	}

	for i := range 2 {
		start := time.Now()
		if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
			t.Fatalf("EnsureBaseVolume #%d: %v", i+1, err)
		}
		t.Logf("EnsureBaseVolume #%d: %v", i+1, time.Since(start))
	}
	if got := fileSum(t, basePath); got != sum {
		t.Fatalf("uploaded base volume has sha256 %s, want %s", got, sum)
	}
	// A damaged copy (an interrupted upload) is replaced.
	if err := os.Truncate(basePath, 4096); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
		t.Fatalf("EnsureBaseVolume over a damaged copy: %v", err)
	}
	if got := fileSum(t, basePath); got != sum {
		t.Fatalf("repaired base volume has sha256 %s, want %s", got, sum)
	}
	// A copy of the right size whose upload was never recorded as finished
	// (the process died before the record was made) is replaced too.
	virsh := tool(t, "virsh", "libvirt-clients")
	run(t, virsh, "-c", "qemu:///system", "vol-delete", "--pool", pool, "base.sha256-"+sum)
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(basePath, make([]byte, st.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
		t.Fatalf("EnsureBaseVolume over an unrecorded copy: %v", err)
	}
	if got := fileSum(t, basePath); got != sum {
		t.Fatalf("base volume after an unrecorded copy has sha256 %s, want %s", got, sum)
	}
	// Another image under the same name replaces the volume and its record.
	src2, sum2 := image(t, "32M")
	if err := c.EnsureBaseVolume(cx, pool, "base", src2, sum2); err != nil {
		t.Fatalf("EnsureBaseVolume with another image: %v", err)
	}
	if got := fileSum(t, basePath); got != sum2 {
		t.Fatalf("base volume after another image has sha256 %s, want %s", got, sum2)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"base", "base.sha256-" + sum2}; !slices.Equal(names, want) {
		t.Fatalf("pool holds %v, want %v", names, want)
	}
	// Checking a present volume many times over never wedges the
	// connection (streaming the volume back did, about once in a hundred).
	for i := range 200 {
		if i%10 == 0 {
			if err := os.Truncate(basePath, 4096); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- c.EnsureBaseVolume(cx, pool, "base", src2, sum2) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("EnsureBaseVolume, call %d: %v", i+1, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("EnsureBaseVolume, call %d: no answer in 30s", i+1)
		}
	}
	if got := fileSum(t, basePath); got != sum2 {
		t.Fatalf("base volume after repeated checks has sha256 %s, want %s", got, sum2)
	}
	if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
		t.Fatalf("EnsureBaseVolume back to the first image: %v", err)
	}

	path, err := c.EnsureDisk(cx, pool, "vm-1", "base", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "vm-1"); path != want {
		t.Errorf("EnsureDisk path = %q, want %q", path, want)
	}
	again, err := c.EnsureDisk(cx, pool, "vm-1", "base", 2)
	if err != nil || again != path {
		t.Errorf("EnsureDisk again = %q, %v; want %q, nil", again, err, path)
	}
	if _, err := c.EnsureDisk(cx, pool, "base", "vm-1", 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("EnsureDisk over a volume that is no overlay = %v, want ErrInvalid", err)
	}

	var info struct {
		Format          string `json:"format"`
		VirtualSize     int64  `json:"virtual-size"`
		BackingFilename string `json:"backing-filename"`
		BackingFormat   string `json:"backing-filename-format"`
	}
	out := run(t, tool(t, "qemu-img", "qemu-utils"), "info", "-U", "--output=json", path)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	wantInfo := info
	wantInfo.Format, wantInfo.VirtualSize, wantInfo.BackingFilename, wantInfo.BackingFormat = "qcow2", 2<<30, basePath, "qcow2"
	if diff := cmp.Diff(wantInfo, info); diff != "" {
		t.Errorf("qemu-img info of the overlay (-want +got):\n%s", diff)
	}

	// A disk grows to a larger plan and never shrinks.
	virtualSize := func() int64 {
		t.Helper()
		out := run(t, tool(t, "qemu-img", "qemu-utils"), "info", "-U", "--output=json", path)
		var info struct {
			VirtualSize int64 `json:"virtual-size"`
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("qemu-img info: %v\n%s", err, out)
		}
		return info.VirtualSize
	}
	for _, tc := range []struct {
		size, want int64
	}{{3, 3 << 30}, {3, 3 << 30}, {1, 3 << 30}} {
		if got, err := c.GrowDisk(cx, pool, "vm-1", tc.size); err != nil || got != path {
			t.Errorf("GrowDisk(%d GiB) = %q, %v; want %q", tc.size, got, err, path)
		}
		if got := virtualSize(); got != tc.want {
			t.Errorf("after GrowDisk(%d GiB) the disk is %d bytes, want %d", tc.size, got, tc.want)
		}
	}
	if _, err := c.GrowDisk(cx, pool, "no-such-disk", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("GrowDisk of a missing disk = %v, want ErrNotFound", err)
	}

	wiped, err := c.DeleteDisk(cx, pool, "vm-1")
	if err != nil || !wiped {
		t.Errorf("DeleteDisk = %v, %v; want true, nil", wiped, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("overlay still there after DeleteDisk: %v", err)
	}
	if wiped, err := c.DeleteDisk(cx, pool, "vm-1"); err != nil || wiped {
		t.Errorf("DeleteDisk again = %v, %v; want false, nil", wiped, err)
	}
	if _, err := c.DeleteDisk(cx, pool, "base"); err != nil {
		t.Errorf("DeleteDisk(base) = %v", err)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testBridge creates a bridge with no addresses and no uplink, for the
// guest's NIC, and deletes it afterwards.
func testBridge(t *testing.T, name string) string {
	t.Helper()
	ip := tool(t, "ip", "iproute2")
	run(t, ip, "link", "add", name, "type", "bridge")
	t.Cleanup(func() { run(t, ip, "link", "del", name) })
	run(t, ip, "link", "set", name, "up")
	return name
}

func TestQEMUDomainLifecycle(t *testing.T) {
	c := dial(t, "qemu:///system")
	cx := ctx(t, 90*time.Second)
	pool, _ := testPool(t)
	src, sum := image(t, "64M")
	if err := c.EnsureBaseVolume(cx, pool, "base", src, sum); err != nil {
		t.Fatal(err)
	}
	disk, err := c.EnsureDisk(cx, pool, "vm-life", "base", 1)
	if err != nil {
		t.Fatal(err)
	}
	spec := DomainSpec{
		Name: unique("fibrix-test-life-"), UUID: uuid.NewString(),
		VCPUs: 1, MemoryMiB: 128, Type: TypeQEMU,
		DiskPath: disk, Bridge: testBridge(t, unique("br-fbx-")), MAC: "52:54:00:fb:00:01",
		SMBIOSSerial: "ds=nocloud-net;s=http://127.0.0.1:8081/t/",
	}
	t.Cleanup(func() { // t.Context() has ended by now
		cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Destroy(cx, spec.Name)
		_ = c.Undefine(cx, spec.Name)
	})

	var got []DomainState
	timed := func(name string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		took := time.Since(start)
		s, err := c.State(cx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
		t.Logf("%-9s %8.1f ms -> %s", name, float64(took.Microseconds())/1000, s)
	}
	total := time.Now()
	timed("define", func() error { return c.Define(cx, spec) })
	timed("start", func() error { return c.Start(cx, spec.Name) })
	timed("start", func() error { return c.Start(cx, spec.Name) })
	timed("destroy", func() error { return c.Destroy(cx, spec.Name) })
	timed("undefine", func() error { return c.Undefine(cx, spec.Name) })
	t.Logf("define+start+destroy+undefine: %v", time.Since(total))
	if diff := cmp.Diff([]DomainState{ShutOff, Running, Running, ShutOff, Absent}, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if _, err := c.DeleteDisk(cx, pool, "vm-life"); err != nil {
		t.Error(err)
	}
	if _, err := c.DeleteDisk(cx, pool, "base"); err != nil {
		t.Error(err)
	}
}
