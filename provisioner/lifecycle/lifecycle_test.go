package lifecycle_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/engine"
	"github.com/fibrixcloud/fibrix/provisioner/fleet"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/lifecycle"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// rig is a provisioner on a real store and libvirt's test driver.
type rig struct {
	t      *testing.T
	st     *store.Store
	pool   *fleet.Pool
	host   store.Host
	tenant store.Tenant
	actor  store.Actor
	key    store.SSHKey
	image  store.Image
}

func newRig(t *testing.T, dbURL string) *rig {
	t.Helper()
	libvirttest.Ensure(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := store.Open(ctx, dbURL, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, pool: fleet.NewPool(nil)}
	t.Cleanup(r.pool.Close)
	staff := store.Actor{Email: "staff@isp.example"}

	r.image = r.addImage("tiny", "fibrix test image\n")
	if _, err := st.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "192.0.2.0/24", Gateway: "192.0.2.1",
		DNSServers: []string{"192.0.2.1"}, RangeStart: "192.0.2.10", RangeEnd: "192.0.2.20"}); err != nil {
		t.Fatal(err)
	}
	h, err := st.CreateHost(ctx, staff, store.HostInput{Name: "testhost", URI: "test:///default", StoragePool: "default-pool",
		CPURatio: 4, MemoryRatio: 1, DiskRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Discovery through the real libvirt connection makes the host ready.
	fleet.NewDiscoverer(st, r.pool, fleet.DiscoveryConfig{Interval: time.Minute}, log).Refresh(ctx, h)
	hs, err := st.GetHost(ctx, h.ID)
	if err != nil || hs.State != store.HostReady {
		t.Fatalf("host after discovery: %+v %v", hs.Host, err)
	}
	r.host = hs.Host

	ten, u, err := st.SignUp(ctx, store.Actor{}, "Rig", "rig@example.com", "hash")
	if err != nil {
		t.Fatal(err)
	}
	r.tenant = ten
	r.actor = store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	if r.key, err = st.AddSSHKey(ctx, r.actor, ten.ID, "k", string(ssh.MarshalAuthorizedKey(sp))); err != nil {
		t.Fatal(err)
	}

	rec, err := lifecycle.New(st, r.pool, &lifecycle.ImageCache{Dir: t.TempDir()}, lifecycle.Config{
		MetadataURL: "http://192.0.2.1:8775", ShutdownTimeout: 2 * time.Second, WatchInterval: 200 * time.Millisecond,
	}, "rig-worker", log)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(st, rec, engine.Config{Workers: 2, Lease: 5 * time.Second, Poll: 50 * time.Millisecond,
		MaxAttempts: 3, Owner: "rig-worker", Backoff: func(int) time.Duration { return 100 * time.Millisecond }}, log)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	return r
}

// addImage registers an image file holding content: a few bytes are
// enough for the test driver.
func (r *rig) addImage(name, content string) store.Image {
	r.t.Helper()
	img := filepath.Join(r.t.TempDir(), name+".qcow2")
	if err := os.WriteFile(img, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	im, err := r.st.CreateImage(context.Background(), store.Actor{Email: "staff@isp.example"}, store.ImageInput{Name: name, OS: "Test", Version: "1",
		SourceURL: "file://" + img, Checksum: hex.EncodeToString(sum[:]), Enabled: true})
	if err != nil {
		r.t.Fatal(err)
	}
	return im
}

// stepsSince names the timeline's steps from the last one called first on.
func stepsSince(d store.VMDetail, first string) []string {
	var out []string
	for _, s := range d.Steps {
		if s.Step == first {
			out = nil
		}
		out = append(out, s.Step)
	}
	return out
}

// lastStep is the timeline's last step called name.
func lastStep(d store.VMDetail, name string) store.VMStep {
	var last store.VMStep
	for _, s := range d.Steps {
		if s.Step == name {
			last = s
		}
	}
	return last
}

// waitState waits until the VM reaches state, failing with its last error.
func (r *rig) waitState(vmID, state string) store.VMDetail {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := r.st.GetVM(context.Background(), "", vmID)
		if err == nil && d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("VM did not reach %s: state %s, last error %q, err %v", state, d.State, d.LastError, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) domain(vmID string) hypervisor.DomainState {
	r.t.Helper()
	hv, err := r.pool.Conn(context.Background(), r.host)
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := hv.State(context.Background(), "fibrix-"+vmID)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) act(vmID, action string) {
	r.t.Helper()
	if _, err := r.st.RequestAction(context.Background(), r.actor, r.tenant.ID, vmID, action); err != nil {
		r.t.Fatalf("%s: %v", action, err)
	}
}

// eachRig runs fn on a rig on SQLite and on one on PostgreSQL.
func eachRig(t *testing.T, fn func(t *testing.T, r *rig)) {
	for name, url := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "fibrix.db") },
		"postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) { fn(t, newRig(t, url(t))) })
	}
}

func TestLifecycleOnTestDriver(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		vm, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "web", Plan: "nano", Image: "tiny", SSHKeys: []string{r.key.ID}})
		if err != nil {
			t.Fatal(err)
		}
		d := r.waitState(vm.ID, store.VMRunning)
		if d.IP != "192.0.2.10" || d.MAC == "" || d.MetadataToken == "" {
			t.Errorf("running VM: ip %q mac %q token set %v", d.IP, d.MAC, d.MetadataToken != "")
		}
		if s := r.domain(vm.ID); s != hypervisor.Running {
			t.Errorf("domain is %s", s)
		}
		var steps []string
		for _, s := range d.Steps {
			if s.State != store.StepDone {
				t.Errorf("step %s is %s: %s", s.Step, s.State, s.Detail)
			}
			steps = append(steps, s.Step)
		}
		t.Logf("timeline: %v", steps)

		r.act(vm.ID, store.OpStop)
		r.waitState(vm.ID, store.VMStopped)
		if s := r.domain(vm.ID); s.Active() {
			t.Errorf("stopped VM's domain is %s", s)
		}
		r.act(vm.ID, store.OpStart)
		r.waitState(vm.ID, store.VMRunning)
		r.act(vm.ID, store.OpReboot)
		r.act2Done(vm.ID, store.OpReboot)
		r.act(vm.ID, store.OpRebuild)
		r.act2Done(vm.ID, store.OpRebuild)
		if d := r.waitState(vm.ID, store.VMRunning); d.IP != "192.0.2.10" {
			t.Errorf("rebuild changed the address to %s", d.IP)
		}

		// Day two: a bigger plan, then another image; both keep the
		// name and address.
		if _, err := r.st.ResizeVM(ctx, r.actor, r.tenant.ID, vm.ID, "small"); err != nil {
			t.Fatal(err)
		}
		r.act2Done(vm.ID, store.OpResize)
		d = r.waitState(vm.ID, store.VMRunning)
		if d.PlanName != "small" || d.MemoryMiB != 2048 || d.DiskGiB != 20 || d.IP != "192.0.2.10" {
			t.Errorf("after resize: plan %s, %d MiB, %d GiB, ip %s", d.PlanName, d.MemoryMiB, d.DiskGiB, d.IP)
		}
		if s := r.domain(vm.ID); s != hypervisor.Running {
			t.Errorf("resized VM's domain is %s", s)
		}
		if got, want := stepsSince(d, "resize"), []string{"resize", "stop", "disk", "define", "start"}; !slices.Equal(got, want) {
			t.Errorf("resize timeline %v, want %v", got, want)
		}
		other := r.addImage("tiny-2", "another fibrix test image\n")
		if _, err := r.st.RebuildVM(ctx, r.actor, r.tenant.ID, vm.ID, other.Name); err != nil {
			t.Fatal(err)
		}
		r.act2Done(vm.ID, store.OpRebuild)
		d = r.waitState(vm.ID, store.VMRunning)
		if d.ImageName != "tiny-2" || d.Name != "web" || d.IP != "192.0.2.10" {
			t.Errorf("after rebuild from another image: image %s, name %s, ip %s", d.ImageName, d.Name, d.IP)
		}
		if last := lastStep(d, "image"); last.Message != "Preparing the tiny-2 image" || last.State != store.StepDone {
			t.Errorf("rebuild's image step: %+v", last)
		}

		// Drift: the domain is stopped behind Fibrix's back.
		hv, _ := r.pool.Conn(ctx, r.host)
		if err := hv.Destroy(ctx, "fibrix-"+vm.ID); err != nil {
			t.Fatal(err)
		}
		d = r.waitState(vm.ID, store.VMStopped)
		if last := d.Steps[len(d.Steps)-1]; last.Step != "drift" {
			t.Errorf("last step %s, want drift", last.Step)
		}

		before, _ := r.st.GetHost(ctx, r.host.ID)
		r.act(vm.ID, store.OpDelete)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := r.st.GetVM(ctx, "", vm.ID); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("VM was not deleted")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s := r.domain(vm.ID); s != hypervisor.Absent {
			t.Errorf("deleted VM's domain is %s", s)
		}
		after, _ := r.st.GetHost(ctx, r.host.ID)
		if after.AllocMemoryMiB != before.AllocMemoryMiB-d.MemoryMiB || after.AllocMemoryMiB != 0 {
			t.Errorf("host memory allocated %d → %d", before.AllocMemoryMiB, after.AllocMemoryMiB)
		}
		_, used, _ := r.st.QuotaUsage(ctx, r.tenant.ID)
		if used.Instances != 0 {
			t.Errorf("quota still counts %d instances", used.Instances)
		}
		// The address is free again: the next VM gets it.
		vm2, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "web", Plan: "nano", Image: "tiny", SSHKeys: []string{r.key.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if d := r.waitState(vm2.ID, store.VMRunning); d.IP != "192.0.2.10" {
			t.Errorf("address after release: %s", d.IP)
		}
		entries, _, _ := r.st.ListAudit(ctx, store.AuditFilter{TenantID: r.tenant.ID, Action: "vm.erased"}, store.Page{})
		if len(entries) != 1 {
			t.Errorf("vm.erased audit entries: %d", len(entries))
		}
	})
}

// act2Done waits until the VM's newest operation of type op has finished.
func (r *rig) act2Done(vmID, op string) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d, err := r.st.GetVM(context.Background(), "", vmID)
		if err == nil && len(d.Operations) > 0 && d.Operations[0].Type == op {
			switch d.Operations[0].State {
			case store.OpDone:
				return
			case store.OpFailed:
				r.t.Fatalf("%s failed: %s", op, d.Operations[0].Message)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("%s did not finish", op)
}

// TestResizeRetriesUntilDone resizes a VM whose disk went missing: the
// resize keeps failing at the disk step, the provisioner gives up with the
// reason, and a staff retry after the disk is back finishes it.
func TestResizeRetriesUntilDone(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "fibrix.db"))
	ctx := context.Background()
	vm, err := r.st.CreateVM(ctx, r.actor, r.tenant.ID, store.VMOrder{Name: "web", Plan: "nano", Image: "tiny", SSHKeys: []string{r.key.ID}})
	if err != nil {
		t.Fatal(err)
	}
	r.waitState(vm.ID, store.VMRunning)
	hv, err := r.pool.Conn(ctx, r.host)
	if err != nil {
		t.Fatal(err)
	}
	disk := "fibrix-" + vm.ID + ".qcow2"
	if _, err := hv.DeleteDisk(ctx, r.host.StoragePool, disk); err != nil {
		t.Fatal(err)
	}
	op, err := r.st.ResizeVM(ctx, r.actor, r.tenant.ID, vm.ID, "small")
	if err != nil {
		t.Fatal(err)
	}
	d := r.waitState(vm.ID, store.VMError)
	if !strings.Contains(d.LastError, "disk: ") || !strings.Contains(d.LastError, "gave up") {
		t.Errorf("last error %q, want the disk step and that the provisioner gave up", d.LastError)
	}
	if d.Operations[0].ID != op.ID || d.Operations[0].State != store.OpRunning {
		t.Errorf("the resize is %s, want still running", d.Operations[0].State)
	}
	if failed := lastStep(d, "disk"); failed.State != store.StepFailed {
		t.Errorf("disk step %+v, want failed", failed)
	}
	if _, err := r.st.RequestAction(ctx, r.actor, r.tenant.ID, vm.ID, store.OpStart); !errors.Is(err, store.ErrConflict) {
		t.Errorf("start while the resize is unfinished: %v", err)
	}

	sum := strings.TrimPrefix(r.image.Checksum, "sha256:")
	if _, err := hv.EnsureDisk(ctx, r.host.StoragePool, disk, "fibrix-base-"+sum[:16]+".qcow2", 10); err != nil {
		t.Fatal(err)
	}
	if err := r.st.RetryVM(ctx, store.Actor{Email: "staff@isp.example"}, vm.ID); err != nil {
		t.Fatal(err)
	}
	r.act2Done(vm.ID, store.OpResize)
	d = r.waitState(vm.ID, store.VMRunning)
	if d.PlanName != "small" || d.LastError != "" {
		t.Errorf("after the retry: plan %s, last error %q", d.PlanName, d.LastError)
	}
	if s := r.domain(vm.ID); s != hypervisor.Running {
		t.Errorf("domain is %s", s)
	}
}
