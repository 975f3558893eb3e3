// Package lifecycle turns a customer's VM record into a libvirt domain and
// back: one handler per VM state, each observing the host first and then
// acting, so that a pass interrupted anywhere can simply run again.
package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/engine"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/metadata"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Hypervisor is what the reconciler needs from one libvirt host.
type Hypervisor interface {
	Facts(ctx context.Context) (hypervisor.Facts, error)
	EnsureBaseVolume(ctx context.Context, pool, name, srcPath, sum string) error
	EnsureDisk(ctx context.Context, pool, name, base string, sizeGiB int64) (string, error)
	GrowDisk(ctx context.Context, pool, name string, sizeGiB int64) (string, error)
	DeleteDisk(ctx context.Context, pool, name string) (bool, error)
	CopyVolume(ctx context.Context, pool, src, dst string) (int64, error)
	ReplaceVolume(ctx context.Context, pool, src, dst string) error
	LiveSnapshot(ctx context.Context, domain, pool, disk, dst string) (hypervisor.LiveCopy, error)
	Define(ctx context.Context, spec hypervisor.DomainSpec) error
	State(ctx context.Context, name string) (hypervisor.DomainState, error)
	Start(ctx context.Context, name string) error
	EnsureDirectory(ctx context.Context, dir string) error
	Shutdown(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	Reboot(ctx context.Context, name string) error
	Undefine(ctx context.Context, name string) error
}

// Hosts hands out a connection to a VM host.
type Hosts interface {
	Conn(ctx context.Context, h store.Host) (Hypervisor, error)
}

// Images turns an image URL into a verified local file.
type Images interface {
	Fetch(ctx context.Context, url, checksum string) (path string, err error)
}

// Config holds the reconciler's settings.
type Config struct {
	// MetadataURL is the base URL guests reach the metadata service at,
	// e.g. http://10.213.0.1:8775; each VM appends its own token.
	MetadataURL string
	// DomainType is "kvm" or "qemu" (software emulation).
	DomainType string
	// ShutdownTimeout is how long an ACPI shutdown may take before the
	// domain is forced off.
	ShutdownTimeout time.Duration
	// WatchInterval is how often a settled VM is compared with its domain.
	WatchInterval time.Duration
	// BootTimeout bounds waiting for a started domain to report running.
	BootTimeout time.Duration
	// ConsoleLogDir, a directory on the hosts, keeps each VM's serial
	// console as fibrix-<vm id>.console.log; empty keeps none.
	ConsoleLogDir string
}

func (c *Config) defaults() error {
	if c.MetadataURL == "" {
		return errors.New("lifecycle: metadata url is required")
	}
	c.MetadataURL = strings.TrimRight(c.MetadataURL, "/")
	switch c.DomainType {
	case "":
		c.DomainType = hypervisor.TypeQEMU
	case hypervisor.TypeQEMU, hypervisor.TypeKVM:
	default:
		return fmt.Errorf("lifecycle: domain type %q: use kvm or qemu", c.DomainType)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 60 * time.Second
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = 30 * time.Second
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 30 * time.Second
	}
	return nil
}

// Reconciler is the engine's handler for VMs.
type Reconciler struct {
	st     *store.Store
	hosts  Hosts
	images Images
	// uploaded remembers which base volumes this process has verified on
	// which host ("host/pool/volume"), so that an image is not read back
	// on every pass; a failed compose forgets the host's entries.
	uploadedMu sync.Mutex
	uploaded   map[string]bool
	cfg        Config
	log        *slog.Logger
	owner      string
}

// New builds a reconciler; owner is the engine's lease owner name, which
// guards every write.
func New(st *store.Store, hosts Hosts, images Images, cfg Config, owner string, log *slog.Logger) (*Reconciler, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Reconciler{st: st, hosts: hosts, images: images, cfg: cfg, log: log, owner: owner, uploaded: map[string]bool{}}, nil
}

// pass is the state of one reconcile pass over one VM.
type pass struct {
	vm    store.VMDetail
	host  store.Host
	hv    Hypervisor
	image store.Image
	log   *slog.Logger
}

// DomainName is the libvirt name of a VM: unique, stable, and free of
// anything a customer typed.
func DomainName(vmID string) string { return "fibrix-" + vmID }

func domainName(vmID string) string { return DomainName(vmID) }

func diskName(vmID string) string { return "fibrix-" + vmID + ".qcow2" }

// baseName names an image file in a host pool by its content.
func baseName(checksum, suffix string) string {
	return "fibrix-base-" + strings.TrimPrefix(checksum, "sha256:")[:16] + suffix
}

// macFor derives a stable, locally administered MAC from the VM id
// (52:54:00 is the prefix QEMU guests conventionally use).
func macFor(vmID string) string {
	h := sha256.Sum256([]byte(vmID))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
}

// table is the lifecycle: which handler owns a VM in each state.
func (r *Reconciler) table() map[string]func(context.Context, *pass) (engine.Result, error) {
	return map[string]func(context.Context, *pass) (engine.Result, error){
		store.VMPending:      r.create,
		store.VMProvisioning: r.create,
		store.VMRunning:      r.settled,
		store.VMStopped:      r.settled,
		store.VMError:        r.settled,
		store.VMDeleting:     r.delete,
	}
}

// Reconcile implements engine.Handler.
func (r *Reconciler) Reconcile(ctx context.Context, vm store.VM) (engine.Result, error) {
	handler, ok := r.table()[vm.State]
	if !ok {
		return engine.Result{Done: true}, nil
	}
	p, err := r.load(ctx, vm)
	if err != nil {
		return engine.Result{}, err
	}
	return handler(ctx, p)
}

func (r *Reconciler) load(ctx context.Context, vm store.VM) (*pass, error) {
	d, err := r.st.GetVM(ctx, "", vm.ID)
	if err != nil {
		return nil, &engine.StepError{Step: "load", Err: err}
	}
	p := &pass{vm: d, log: r.log.With("vm", vm.ID, "tenant", vm.TenantID)}
	if d.HostID == nil && d.State == store.VMDeleting {
		// A delete interrupted after it gave the host's capacity back, its
		// last step on the host: only the record of it is left to write.
		return p, nil
	}
	if d.HostID == nil {
		return nil, &engine.StepError{Step: "load", Err: errors.New("the VM was never placed on a host")}
	}
	h, err := r.st.GetHost(ctx, *d.HostID)
	if err != nil {
		return nil, &engine.StepError{Step: "load", Err: fmt.Errorf("host: %w", err)}
	}
	p.host = h.Host
	if p.image, err = r.st.GetImage(ctx, d.ImageID); err != nil {
		return nil, &engine.StepError{Step: "load", Err: fmt.Errorf("image: %w", err)}
	}
	if p.hv, err = r.hosts.Conn(ctx, p.host); err != nil {
		return nil, &engine.StepError{Step: "connect", Err: fmt.Errorf("host %s is unreachable: %w", p.host.Name, err)}
	}
	return p, nil
}

// step runs fn as a timeline step.
func (r *Reconciler) step(ctx context.Context, p *pass, name, message string, fn func(ctx context.Context) error) error {
	return engine.Step(ctx, r.st, p.vm.ID, name, message, fn)
}

// create takes a new VM to running: address, image, disk, domain, start.
func (r *Reconciler) create(ctx context.Context, p *pass) (engine.Result, error) {
	if p.vm.State == store.VMPending {
		if err := r.st.SetVMState(ctx, p.vm.ID, r.owner, store.VMProvisioning, ""); err != nil {
			return engine.Result{}, err
		}
	}
	if p.vm.IP == "" || p.vm.MAC == "" {
		if err := r.assignAddress(ctx, p); err != nil {
			return engine.Result{}, err
		}
	}
	diskMsg := "Creating a " + fmt.Sprint(p.vm.DiskGiB) + " GiB disk"
	if p.vm.SourceSnapshotID != "" {
		diskMsg = "Copying the snapshot into a " + fmt.Sprint(p.vm.DiskGiB) + " GiB disk"
	}
	if err := r.compose(ctx, p, p.vm.SourceSnapshotID, "Preparing the "+p.image.Name+" image", diskMsg); err != nil {
		return engine.Result{}, err
	}
	if err := r.step(ctx, p, "start", "Starting the VM", func(ctx context.Context) error { return r.startAndWait(ctx, p) }); err != nil {
		return engine.Result{}, err
	}
	if err := r.st.SetVMState(ctx, p.vm.ID, r.owner, store.VMRunning, ""); err != nil {
		return engine.Result{}, err
	}
	p.vm.State = store.VMRunning
	return r.settled(ctx, p)
}

// assignAddress gives the VM its IP address and MAC, once.
func (r *Reconciler) assignAddress(ctx context.Context, p *pass) error {
	return r.step(ctx, p, "network", "Assigning an address", func(ctx context.Context) error {
		if _, err := r.st.AllocateIP(ctx, p.vm.ID); err != nil {
			return err
		}
		if p.vm.MAC == "" {
			p.vm.MAC = macFor(p.vm.ID)
			return r.st.SetVMMAC(ctx, p.vm.ID, r.owner, p.vm.MAC)
		}
		return nil
	})
}

// compose makes sure the image is on the host, the VM's disk exists and the
// domain is defined. The disk is an overlay of the image, or, when snapID
// is set, a copy of that snapshot's volume grown to the plan's size.
func (r *Reconciler) compose(ctx context.Context, p *pass, snapID, imageMsg, diskMsg string) error {
	var boot bootFiles
	err := r.step(ctx, p, "image", imageMsg, func(ctx context.Context) error {
		var err error
		boot, err = r.ensureImage(ctx, p)
		return err
	})
	if err != nil {
		return err
	}
	var diskPath string
	err = r.step(ctx, p, "disk", diskMsg, func(ctx context.Context) error {
		var err error
		if snapID != "" {
			diskPath, err = r.diskFromSnapshot(ctx, p, snapID)
			return err
		}
		diskPath, err = p.hv.EnsureDisk(ctx, p.host.StoragePool, diskName(p.vm.ID), baseName(p.image.Checksum, ".qcow2"), p.vm.DiskGiB)
		if err != nil {
			r.forgetHost(p.host.ID) // the base volume may have gone behind our back
		}
		return err
	})
	if err != nil {
		return err
	}
	return r.step(ctx, p, "define", "Defining the VM on "+p.host.Name, func(ctx context.Context) error {
		return r.define(ctx, p, boot, diskPath)
	})
}

// define defines (or redefines) the VM's domain from its record: size,
// disk, network, metadata address and, for images without a boot loader,
// kernel and command line.
func (r *Reconciler) define(ctx context.Context, p *pass, boot bootFiles, diskPath string) error {
	token, err := r.st.EnsureMetadataToken(ctx, p.vm.ID)
	if err != nil {
		return err
	}
	spec := hypervisor.DomainSpec{
		Name: domainName(p.vm.ID), UUID: p.vm.ID, VCPUs: int(p.vm.VCPUs), MemoryMiB: p.vm.MemoryMiB,
		Type: r.cfg.DomainType, DiskPath: diskPath, Bridge: p.host.Bridge, MAC: p.vm.MAC,
		SMBIOSSerial: "ds=nocloud-net;s=" + r.cfg.MetadataURL + "/" + token + "/",
	}
	if r.cfg.ConsoleLogDir != "" {
		spec.ConsoleLog = strings.TrimRight(r.cfg.ConsoleLogDir, "/") + "/" + domainName(p.vm.ID) + ".console.log"
	}
	if boot.kernel != "" {
		// Debian 12's cloud-init does not fetch network-config over
		// HTTP, so a directly booted guest gets its static address on
		// the kernel command line.
		md, err := r.st.MetadataByToken(ctx, token)
		if err != nil {
			return err
		}
		spec.Kernel, spec.Initrd = boot.kernel, boot.initrd
		spec.Cmdline = "root=/dev/vda rw console=ttyS0 network-config=" +
			base64.StdEncoding.EncodeToString(metadata.NetworkConfig(md))
	}
	return p.hv.Define(ctx, spec)
}

type bootFiles struct{ kernel, initrd string }

// ensureImage uploads the image (and its kernel and initrd, when it boots
// directly) into the host's pool once, named by content.
func (r *Reconciler) ensureImage(ctx context.Context, p *pass) (bootFiles, error) {
	files := []struct{ url, sum, name string }{{p.image.SourceURL, p.image.Checksum, baseName(p.image.Checksum, ".qcow2")}}
	if p.image.KernelURL != "" {
		files = append(files,
			struct{ url, sum, name string }{p.image.KernelURL, p.image.KernelChecksum, baseName(p.image.KernelChecksum, ".vmlinuz")},
			struct{ url, sum, name string }{p.image.InitrdURL, p.image.InitrdChecksum, baseName(p.image.InitrdChecksum, ".initrd")})
	}
	for _, f := range files {
		key := p.host.ID + "/" + p.host.StoragePool + "/" + f.name
		if r.isUploaded(key) {
			continue
		}
		local, err := r.images.Fetch(ctx, f.url, f.sum)
		if err != nil {
			return bootFiles{}, err
		}
		if err := p.hv.EnsureBaseVolume(ctx, p.host.StoragePool, f.name, local, strings.TrimPrefix(f.sum, "sha256:")); err != nil {
			return bootFiles{}, err
		}
		r.markUploaded(key)
	}
	if len(files) == 1 {
		return bootFiles{}, nil
	}
	dir, err := poolPath(ctx, p)
	if err != nil {
		return bootFiles{}, err
	}
	return bootFiles{kernel: dir + "/" + files[1].name, initrd: dir + "/" + files[2].name}, nil
}

func (r *Reconciler) isUploaded(key string) bool {
	r.uploadedMu.Lock()
	defer r.uploadedMu.Unlock()
	return r.uploaded[key]
}

func (r *Reconciler) markUploaded(key string) {
	r.uploadedMu.Lock()
	defer r.uploadedMu.Unlock()
	r.uploaded[key] = true
}

// forgetHost makes the next pass verify the host's base volumes again, for
// example after a disk could not be created from one.
func (r *Reconciler) forgetHost(hostID string) {
	r.uploadedMu.Lock()
	defer r.uploadedMu.Unlock()
	for k := range r.uploaded {
		if strings.HasPrefix(k, hostID+"/") {
			delete(r.uploaded, k)
		}
	}
}

func poolPath(ctx context.Context, p *pass) (string, error) {
	facts, err := p.hv.Facts(ctx)
	if err != nil {
		return "", err
	}
	for _, pool := range facts.Pools {
		if pool.Name == p.host.StoragePool {
			if pool.Path == "" {
				return "", fmt.Errorf("storage pool %s has no directory for kernel files", pool.Name)
			}
			return pool.Path, nil
		}
	}
	return "", fmt.Errorf("storage pool %s is not active on %s", p.host.StoragePool, p.host.Name)
}

// startAndWait starts the domain and waits until libvirt reports it running.
func (r *Reconciler) startAndWait(ctx context.Context, p *pass) error {
	// libvirt refuses to start a domain whose console log directory is
	// missing; discovery creates it, but it may have gone since.
	if r.cfg.ConsoleLogDir != "" {
		if err := p.hv.EnsureDirectory(ctx, r.cfg.ConsoleLogDir); err != nil {
			return fmt.Errorf("console log directory on %s: %w", p.host.Name, err)
		}
	}
	if err := p.hv.Start(ctx, domainName(p.vm.ID)); err != nil {
		return err
	}
	return r.waitFor(ctx, p, r.cfg.BootTimeout, func(s hypervisor.DomainState) bool { return s == hypervisor.Running })
}

func (r *Reconciler) waitFor(ctx context.Context, p *pass, limit time.Duration, ok func(hypervisor.DomainState) bool) error {
	deadline := time.Now().Add(limit)
	for {
		s, err := p.hv.State(ctx, domainName(p.vm.ID))
		if err != nil {
			return err
		}
		if ok(s) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the domain is still %s after %s", s, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// settled runs queued operations, then compares the VM with its domain.
func (r *Reconciler) settled(ctx context.Context, p *pass) (engine.Result, error) {
	op, ok, err := r.st.NextOperation(ctx, p.vm.ID)
	if err != nil {
		return engine.Result{}, err
	}
	if ok {
		if err := r.st.StartOperation(ctx, op.ID); err != nil {
			return engine.Result{}, err
		}
		state, opErr := r.operate(ctx, p, op)
		if opErr == nil {
			opErr = r.settleSnapshot(ctx, op, nil)
		} else if serr := r.settleSnapshot(ctx, op, opErr); serr != nil {
			return engine.Result{}, serr
		}
		if opErr != nil && op.Type == store.OpResize {
			// The record has the new plan already (and bills it), so the
			// domain must come to match it: the pass fails, the engine
			// tries again with backoff, and the operation stays running
			// until it is done or the engine gives up and staff retry.
			return engine.Result{}, opErr
		}
		msg := "done"
		result := store.OpDone
		if opErr != nil {
			result, msg = store.OpFailed, opErr.Error()
			p.log.Warn("operation failed", "operation", op.Type, "err", opErr)
		}
		if err := r.st.FinishOperation(ctx, op.ID, result, msg); err != nil {
			return engine.Result{}, err
		}
		if state != "" {
			if err := r.st.SetVMState(ctx, p.vm.ID, r.owner, state, ""); err != nil {
				return engine.Result{}, err
			}
			p.vm.State = state
		}
		// More may be queued; come straight back.
		return engine.Result{RequeueAfter: time.Millisecond}, nil
	}
	return r.watch(ctx, p)
}

// operate carries out one queued operation and returns the VM's new state.
func (r *Reconciler) operate(ctx context.Context, p *pass, op store.Operation) (string, error) {
	name := domainName(p.vm.ID)
	switch op.Type {
	case store.OpStart:
		return store.VMRunning, r.step(ctx, p, "start", "Starting the VM", func(ctx context.Context) error { return r.startAndWait(ctx, p) })
	case store.OpStop:
		return store.VMStopped, r.step(ctx, p, "stop", "Shutting down the VM", func(ctx context.Context) error { return r.stop(ctx, p) })
	case store.OpReboot:
		return store.VMRunning, r.step(ctx, p, "reboot", "Rebooting the VM", func(ctx context.Context) error { return p.hv.Reboot(ctx, name) })
	case store.OpRebuild:
		err := r.step(ctx, p, "rebuild", "Erasing the disk for a fresh install", func(ctx context.Context) error {
			if err := p.hv.Destroy(ctx, name); err != nil {
				return err
			}
			_, err := p.hv.DeleteDisk(ctx, p.host.StoragePool, diskName(p.vm.ID))
			return err
		})
		if err == nil {
			err = r.compose(ctx, p, "", "Preparing the "+p.image.Name+" image", "Creating a fresh disk")
		}
		if err == nil {
			err = r.step(ctx, p, "start", "Starting the VM", func(ctx context.Context) error { return r.startAndWait(ctx, p) })
		}
		if err != nil {
			return store.VMError, err
		}
		return store.VMRunning, nil
	case store.OpResize:
		return r.resize(ctx, p)
	case store.OpSnapshot, store.OpRestore, store.OpSnapshotDelete:
		return r.snapshotOp(ctx, p, op)
	}
	return "", fmt.Errorf("unknown operation %q", op.Type)
}

// resize gives the domain the VM's recorded plan: the guest is shut down,
// the disk grown, the domain redefined with the new vCPUs and memory, and
// started again unless the customer wants it stopped. Every step may run
// again after a failure or a crash; a disk already grown stays as it is.
func (r *Reconciler) resize(ctx context.Context, p *pass) (string, error) {
	s, err := p.hv.State(ctx, domainName(p.vm.ID))
	if err != nil {
		return "", &engine.StepError{Step: "observe", Err: err}
	}
	if s.Active() {
		err := r.step(ctx, p, "stop", "Shutting down the VM to apply the "+p.vm.PlanName+" plan", func(ctx context.Context) error { return r.stop(ctx, p) })
		if err != nil {
			return "", err
		}
	}
	var diskPath string
	err = r.step(ctx, p, "disk", fmt.Sprintf("Resizing the disk to %d GiB", p.vm.DiskGiB), func(ctx context.Context) error {
		var err error
		diskPath, err = p.hv.GrowDisk(ctx, p.host.StoragePool, diskName(p.vm.ID), p.vm.DiskGiB)
		return err
	})
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Giving the VM %d vCPU and %s RAM", p.vm.VCPUs, store.FormatMiB(p.vm.MemoryMiB))
	err = r.step(ctx, p, "define", msg, func(ctx context.Context) error {
		boot, err := r.ensureImage(ctx, p)
		if err != nil {
			return err
		}
		return r.define(ctx, p, boot, diskPath)
	})
	if err != nil {
		return "", err
	}
	if p.vm.DesiredState != store.VMRunning {
		return store.VMStopped, nil
	}
	if err := r.step(ctx, p, "start", "Starting the VM", func(ctx context.Context) error { return r.startAndWait(ctx, p) }); err != nil {
		return "", err
	}
	return store.VMRunning, nil
}

// stop asks the guest to power off and forces the domain off when it does
// not within the timeout.
func (r *Reconciler) stop(ctx context.Context, p *pass) error {
	name := domainName(p.vm.ID)
	if err := p.hv.Shutdown(ctx, name); err != nil {
		return err
	}
	err := r.waitFor(ctx, p, r.cfg.ShutdownTimeout, func(s hypervisor.DomainState) bool { return !s.Active() })
	if err == nil {
		return nil
	}
	p.log.Info("guest ignored the shutdown request; forcing it off", "after", r.cfg.ShutdownTimeout)
	return p.hv.Destroy(ctx, name)
}

// watch compares the domain with what the VM should be, shows drift, and
// keeps the VM under observation.
func (r *Reconciler) watch(ctx context.Context, p *pass) (engine.Result, error) {
	again := engine.Result{RequeueAfter: r.cfg.WatchInterval}
	s, err := p.hv.State(ctx, domainName(p.vm.ID))
	if err != nil {
		return engine.Result{}, &engine.StepError{Step: "observe", Err: err}
	}
	var state, msg string
	switch {
	case s == hypervisor.Absent && p.vm.State != store.VMError:
		state, msg = store.VMError, "the VM's domain disappeared from "+p.host.Name+" outside Fibrix"
	case s == hypervisor.Running && p.vm.State == store.VMStopped:
		state, msg = store.VMRunning, "the VM was started outside Fibrix"
	case s != hypervisor.Absent && !s.Active() && p.vm.State == store.VMRunning:
		state, msg = store.VMStopped, "the VM was stopped outside Fibrix (or powered itself off)"
	case s == hypervisor.Running && p.vm.State == store.VMError && p.vm.LastError != "":
		// A running domain outlives an old error; show what is true now.
		state = store.VMRunning
	default:
		return again, nil
	}
	p.log.Warn("drift", "domain", s, "was", p.vm.State, "now", state)
	if msg != "" {
		if err := r.step(ctx, p, "drift", msg, func(context.Context) error { return nil }); err != nil {
			return engine.Result{}, err
		}
	}
	lastErr := ""
	if state == store.VMError {
		lastErr = msg
	}
	if err := r.st.SetVMState(ctx, p.vm.ID, r.owner, state, lastErr); err != nil {
		return engine.Result{}, err
	}
	return again, nil
}

// delete removes everything the VM had: domain, disk (erased first),
// address and host capacity.
func (r *Reconciler) delete(ctx context.Context, p *pass) (engine.Result, error) {
	if p.hv == nil {
		// Domain and disk went before the capacity did (see load); whether
		// the disk was zeroed first is not known any more.
		return r.finishDelete(ctx, p, false)
	}
	name := domainName(p.vm.ID)
	err := r.step(ctx, p, "destroy", "Stopping and removing the VM", func(ctx context.Context) error {
		// No domain is fine: the VM was deleted before it was defined, or
		// an interrupted pass removed it already.
		if err := p.hv.Destroy(ctx, name); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
			return err
		}
		return p.hv.Undefine(ctx, name)
	})
	if err != nil {
		return engine.Result{}, err
	}
	var wiped bool
	err = r.step(ctx, p, "erase", "Erasing and deleting the disk", func(ctx context.Context) error {
		var err error
		wiped, err = p.hv.DeleteDisk(ctx, p.host.StoragePool, diskName(p.vm.ID))
		return err
	})
	if err != nil {
		return engine.Result{}, err
	}
	if err := r.deleteSnapshots(ctx, p); err != nil {
		return engine.Result{}, err
	}
	return r.finishDelete(ctx, p, wiped)
}

// finishDelete gives back the VM's address and host capacity and records it
// deleted; every step may run again after a crash.
func (r *Reconciler) finishDelete(ctx context.Context, p *pass, wiped bool) (engine.Result, error) {
	err := r.step(ctx, p, "release", "Releasing the address and capacity", func(ctx context.Context) error {
		if err := r.st.ReleaseIP(ctx, p.vm.ID); err != nil {
			return err
		}
		return r.st.ReleaseHostCapacity(ctx, p.vm.ID)
	})
	if err != nil {
		return engine.Result{}, err
	}
	erased := "the disk was deleted"
	if wiped {
		erased = "the disk was overwritten with zeros and deleted"
	}
	if op, ok, err := r.st.NextOperation(ctx, p.vm.ID); err == nil && ok {
		if err := r.st.StartOperation(ctx, op.ID); err == nil {
			_ = r.st.FinishOperation(ctx, op.ID, store.OpDone, "deleted; "+erased)
		}
	}
	if err := r.st.MarkVMDeleted(ctx, p.vm.ID, r.owner, wiped); err != nil {
		return engine.Result{}, err
	}
	a := store.Actor{Email: "provisioner", TenantID: p.vm.TenantID}
	t := &store.Target{Type: "vm", ID: p.vm.ID, Name: p.vm.Name, TenantID: p.vm.TenantID}
	if err := r.st.RecordAudit(ctx, a, "vm.erased", t, store.ResultSuccess, erased); err != nil {
		p.log.Error("record audit entry", "err", err)
	}
	return engine.Result{Done: true}, nil
}
