package hypervisor

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// ErrLiveUnsupported reports a host whose libvirt or QEMU cannot copy a
// running guest's disk (no backup job support): the caller copies the
// disk with the guest off instead.
var ErrLiveUnsupported = errors.New("this host cannot copy a running guest's disk")

// LiveCopy is what LiveSnapshot made.
type LiveCopy struct {
	// SizeBytes is what the copy takes in the pool.
	SizeBytes int64
	// Frozen reports that the guest agent froze the guest's file systems
	// while the copy's point in time was fixed; otherwise the copy is
	// crash-consistent (what a power cut at that moment would leave).
	Frozen bool
	// FreezeError says why the file systems were not frozen, when the
	// domain has a guest agent channel but the freeze did not happen (no
	// agent answering, or the guest refused).
	FreezeError string
}

// jobPoll is how often LiveSnapshot looks at the backup job.
const jobPoll = 200 * time.Millisecond

// freezeTimeout bounds the guest agent's freeze: a guest that does not
// answer in time is copied crash-consistent.
const freezeTimeout = 10 * time.Second

// LiveSnapshot copies the disk of running domain, volume disk of pool,
// into volume dst of the same pool while the guest keeps running. QEMU's
// backup job (libvirt's push-mode backup) copies the disk as it was at the
// moment the job began, writes after that moment go to the disk only, and
// the copy is a self-contained qcow2 image read through the disk's backing
// chain. When the guest agent answers, the guest's file systems are frozen
// for that moment (a few milliseconds) and thawed at once. An existing dst,
// as left by an interrupted copy, is replaced; a failed or cancelled copy
// deletes dst again. A domain that is not running gives ErrNotRunning,
// hosts without backup support ErrLiveUnsupported.
func (c *Conn) LiveSnapshot(ctx context.Context, domain, pool, disk, dst string) (LiveCopy, error) {
	var out LiveCopy
	dom, ok, err := c.lookup(ctx, domain)
	if err != nil {
		return out, err
	}
	if !ok {
		return out, fmt.Errorf("live snapshot of %s: domain %w", domain, ErrNotFound)
	}
	if st, err := c.state(ctx, dom); err != nil {
		return out, err
	} else if !st.Active() {
		return out, fmt.Errorf("live snapshot of %s (%s): %w", domain, st, ErrNotRunning)
	}
	p, err := c.pool(ctx, pool)
	if err != nil {
		return out, err
	}
	sv, ok, err := c.volume(ctx, p, disk)
	if err != nil {
		return out, err
	}
	if !ok {
		return out, fmt.Errorf("live snapshot of %s: volume %s: %w", domain, disk, ErrNotFound)
	}
	sx, err := c.volumeXML(ctx, sv)
	if err != nil {
		return out, err
	}
	vol, path, err := c.freshVolume(ctx, p, dst, sx.Capacity)
	if err != nil {
		return out, err
	}
	drop := func(cause error) (LiveCopy, error) {
		// A fresh context: the caller's may be what ended.
		cx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := do0(cx, func() error { return c.lv.StorageVolDelete(vol, 0) }); err != nil && !isCode(err, libvirt.ErrNoStorageVol) {
			return LiveCopy{}, fmt.Errorf("%w (and the partial copy %s was not deleted: %v)", cause, dst, err)
		}
		return LiveCopy{}, cause
	}

	backupXML, err := xml.Marshal(xBackup{Mode: "push", Disks: []xBackupDisk{{
		Name: diskTarget, Backup: "yes", Type: "file", Target: xSource{File: path}, Driver: xBackupDriver{Type: "qcow2"},
	}}})
	if err != nil {
		return drop(fmt.Errorf("live snapshot of %s: render backup xml: %w", domain, err))
	}
	out.Frozen, out.FreezeError = c.freeze(ctx, dom)
	err = do0(ctx, func() error {
		return c.lv.DomainBackupBegin(dom, string(backupXML), nil, libvirt.DomainBackupBeginReuseExternal)
	})
	if out.Frozen {
		// The copy's point in time is fixed once the job has begun.
		if terr := c.thaw(ctx, dom); terr != nil && err == nil {
			err = terr
		}
	}
	if isCode(err, libvirt.ErrNoSupport, libvirt.ErrOperationUnsupported, libvirt.ErrArgumentUnsupported) {
		return drop(fmt.Errorf("live snapshot of %s: %w: %v", domain, ErrLiveUnsupported, err))
	}
	if err != nil {
		return drop(fmt.Errorf("live snapshot of %s: begin backup: %w", domain, err))
	}
	if err := c.waitJob(ctx, dom); err != nil {
		return drop(fmt.Errorf("live snapshot of %s: %w", domain, err))
	}
	alloc, err := do(ctx, func() (uint64, error) {
		_, _, alloc, err := c.lv.StorageVolGetInfo(vol)
		return alloc, err
	})
	if err != nil {
		return drop(fmt.Errorf("volume %s: size: %w", dst, err))
	}
	out.SizeBytes = int64(alloc)
	return out, nil
}

// freshVolume replaces volume name of pool p by an empty qcow2 volume of
// the given capacity and returns it with its path.
func (c *Conn) freshVolume(ctx context.Context, p libvirt.StoragePool, name string, capacity xSize) (libvirt.StorageVol, string, error) {
	volXML, err := c.replaceableQcow2(ctx, p, name, capacity)
	if err != nil {
		return libvirt.StorageVol{}, "", err
	}
	vol, err := do(ctx, func() (libvirt.StorageVol, error) { return c.lv.StorageVolCreateXML(p, volXML, 0) })
	if err != nil {
		return vol, "", fmt.Errorf("create volume %s: %w", name, err)
	}
	path, err := do(ctx, func() (string, error) { return c.lv.StorageVolGetPath(vol) })
	if err != nil {
		return vol, "", fmt.Errorf("volume %s: path: %w", name, err)
	}
	return vol, path, nil
}

// freeze asks the guest agent to freeze the guest's file systems. A
// domain without an agent channel, or whose agent does not answer or
// refuses, is not frozen; why is returned, except for a missing channel.
func (c *Conn) freeze(ctx context.Context, dom libvirt.Domain) (bool, string) {
	cx, cancel := context.WithTimeout(ctx, freezeTimeout)
	defer cancel()
	_, err := do(cx, func() (int32, error) { return c.lv.DomainFsfreeze(dom, nil, 0) })
	switch {
	case err == nil:
		return true, ""
	case isCode(err, libvirt.ErrArgumentUnsupported, libvirt.ErrNoSupport):
		return false, "" // no agent channel (or a driver without agents)
	}
	// A freeze that timed out on our side may still happen in the guest:
	// thaw whatever it froze.
	_ = c.thaw(context.WithoutCancel(ctx), dom)
	return false, "file systems not frozen: " + err.Error()
}

// thaw undoes freeze.
func (c *Conn) thaw(ctx context.Context, dom libvirt.Domain) error {
	cx, cancel := context.WithTimeout(ctx, freezeTimeout)
	defer cancel()
	if _, err := do(cx, func() (int32, error) { return c.lv.DomainFsthaw(dom, nil, 0) }); err != nil {
		return fmt.Errorf("thaw the guest's file systems: %w", err)
	}
	return nil
}

// waitJob waits for the domain's job to end and returns its error, if it
// failed. When ctx ends first the job is aborted.
func (c *Conn) waitJob(ctx context.Context, dom libvirt.Domain) error {
	t := time.NewTicker(jobPoll)
	defer t.Stop()
	for {
		typ, err := do(ctx, func() (int32, error) {
			typ, _, _, _, _, _, _, _, _, _, _, _, err := c.lv.DomainGetJobInfo(dom)
			return typ, err
		})
		if err != nil {
			if ctx.Err() != nil {
				c.abortJob(ctx, dom)
			}
			return fmt.Errorf("backup job: %w", err)
		}
		if typ == int32(libvirt.DomainJobNone) {
			break
		}
		select {
		case <-ctx.Done():
			c.abortJob(ctx, dom)
			return fmt.Errorf("backup job: %w", ctx.Err())
		case <-t.C:
		}
	}
	type stats struct {
		typ    int32
		params []libvirt.TypedParam
	}
	st, err := do(ctx, func() (stats, error) {
		typ, params, err := c.lv.DomainGetJobStats(dom, libvirt.DomainJobStatsCompleted)
		return stats{typ, params}, err
	})
	if err != nil {
		return fmt.Errorf("backup job result: %w", err)
	}
	if st.typ != int32(libvirt.DomainJobCompleted) {
		msg := "no reason given"
		for _, p := range st.params {
			if s, ok := p.Value.I.(string); ok && p.Field == "errmsg" {
				msg = s
			}
		}
		return fmt.Errorf("backup job failed: %s", msg)
	}
	return nil
}

func (c *Conn) abortJob(ctx context.Context, dom libvirt.Domain) {
	cx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = do0(cx, func() error { return c.lv.DomainAbortJob(dom) })
}

// xBackup is the subset of libvirt's backup XML that we write
// (https://libvirt.org/formatbackup.html).
type xBackup struct {
	XMLName xml.Name      `xml:"domainbackup"`
	Mode    string        `xml:"mode,attr"`
	Disks   []xBackupDisk `xml:"disks>disk"`
}

type xBackupDisk struct {
	Name   string        `xml:"name,attr"`
	Backup string        `xml:"backup,attr"`
	Type   string        `xml:"type,attr"`
	Target xSource       `xml:"target"`
	Driver xBackupDriver `xml:"driver"`
}

type xBackupDriver struct {
	Type string `xml:"type,attr"`
}
