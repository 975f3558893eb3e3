package fleet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/glebarez/sqlite"

	"github.com/fibrixcloud/fibrix/provisioner/fleet"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestSamplerQEMU samples a real QEMU domain on qemu:///system (libvirt's
// test driver reports no domain statistics): the first pass is the
// baseline, the second stores a sample of the VM the domain belongs to,
// and a domain that is not a VM's is left alone.
func TestSamplerQEMU(t *testing.T) {
	libvirttest.Ensure(t)
	virsh, err := exec.LookPath("virsh")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("virsh not found: install the Debian package libvirt-clients")
		}
		t.Fatal("virsh not found")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fibrix.db")
	st, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	staff := store.Actor{Email: "staff@isp.example"}
	if _, err := st.CreateHost(ctx, staff, store.HostInput{Name: "local", URI: "qemu:///system"}); err != nil {
		t.Fatal(err)
	}
	ten, _, err := st.SignUp(ctx, store.Actor{IP: "192.0.2.1"}, "sampled", "s@sampled.example", "hash")
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.CreateImage(ctx, staff, store.ImageInput{Name: "debian-12", OS: "Debian", Version: "12",
		SourceURL: "https://images.example.com/debian-12.qcow2", Checksum: "sha256:" + fmt.Sprintf("%064x", 1), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := gorm.Open(sqlite.Open("file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	vmID := uuid.NewString()
	ts := time.Now().UTC()
	if err := raw.Exec(`INSERT INTO vms (id, tenant_id, name, plan_id, image_id, vcpus, memory_mib, disk_gib, state, desired_state, created_by, created_at, updated_at)
		VALUES (?, ?, 'busy', 'plan-nano', ?, 1, 64, 1, 'running', 'running', 'test', ?, ?)`, vmID, ten.ID, img.ID, ts, ts).Error; err != nil {
		t.Fatal(err)
	}
	if db, err := raw.DB(); err == nil {
		defer db.Close()
	}

	// Two transient domains without disks: the firmware runs and finds
	// nothing to boot, which is enough for CPU time and memory to count.
	for _, name := range []string{"fibrix-" + vmID, "other-" + vmID[:8]} {
		xml := filepath.Join(t.TempDir(), "dom.xml")
		dom := `<domain type='qemu'><name>` + name + `</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><devices><memballoon model='virtio'/></devices></domain>`
		if err := os.WriteFile(xml, []byte(dom), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(virsh, "-c", "qemu:///system", "create", xml).CombinedOutput(); err != nil {
			t.Fatalf("virsh create %s: %v\n%s", name, err, out)
		}
		t.Cleanup(func() { _ = exec.Command(virsh, "-c", "qemu:///system", "destroy", name).Run() })
	}

	pool := fleet.NewPool(nil)
	defer pool.Close()
	s := fleet.NewSampler(st, pool, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Pass(ctx); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	m, err := st.GetVMMetrics(ctx, ten.ID, vmID, store.RangeHour, time.Now())
	if err != nil || len(m.Samples) != 0 {
		t.Fatalf("after the baseline pass: %+v, %v", m.Samples, err)
	}
	time.Sleep(2 * time.Second)
	if err := s.Pass(ctx); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	m, err = st.GetVMMetrics(ctx, ten.ID, vmID, store.RangeHour, time.Now())
	if err != nil || len(m.Samples) != 1 {
		t.Fatalf("after the second pass: %+v, %v", m.Samples, err)
	}
	x := m.Samples[0]
	t.Logf("sample: %+v", x)
	if x.CPUPercent <= 0 || x.CPUPercent > 100 || x.MemAvailableBytes < 32<<20 || x.MemUsedBytes <= 0 || x.MemUsedBytes > x.MemAvailableBytes ||
		x.DiskReadBps != 0 || x.NetRxBps != 0 {
		t.Errorf("sample %+v: want some CPU, memory within the 64 MiB, no disk or network", x)
	}
}
