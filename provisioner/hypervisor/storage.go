package hypervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/digitalocean/go-libvirt"
)

// EnsureBaseVolume makes sure volume name in pool holds exactly the image
// file srcPath, whose SHA-256 (hex) must be sum: a file with another sum is
// refused before anything is created. The image is uploaded once and hashed
// as it is sent; only then is its completion recorded beside it, as an empty
// volume named for the sum (see uploadMarker). A volume already present is
// kept when that record exists and its size on disk is the image's, and is
// replaced otherwise, as after an interrupted upload or for another image
// under the same name. The volume is never streamed back: go-libvirt's
// download deadlocks its connection when a packet for the stream arrives
// after the call has returned (digitalocean/go-libvirt#241).
func (c *Conn) EnsureBaseVolume(ctx context.Context, pool, name, srcPath, sum string) error {
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("base volume %s: %w: checksum %q is not a hex SHA-256", name, ErrInvalid, sum)
	}
	want = []byte(strings.ToLower(sum))
	f, err := os.Open(srcPath)
	if err != nil {
		return fmt.Errorf("base volume %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("base volume %s: read %s: %w", name, srcPath, err)
	}
	if got := hexSum(h); got != string(want) {
		return fmt.Errorf("base volume %s: %w: %s has sha256 %s, want %s", name, ErrInvalid, srcPath, got, want)
	}

	p, err := c.pool(ctx, pool)
	if err != nil {
		return err
	}
	vol, ok, err := c.volume(ctx, p, name)
	if err != nil {
		return err
	}
	if c.simulated && ok {
		return nil // the test driver holds no data to check
	}
	if ok {
		done, err := c.uploadComplete(ctx, p, vol, string(want), size)
		if err != nil || done {
			return err
		}
	}
	// Forget earlier uploads before touching the volume, so that a
	// replacement cut short is never taken for a finished one.
	if err := c.dropUploadMarkers(ctx, p, name); err != nil {
		return err
	}
	if ok {
		if err := do0(ctx, func() error { return c.lv.StorageVolDelete(vol, 0) }); err != nil {
			return fmt.Errorf("base volume %s: delete stale copy: %w", name, err)
		}
	}

	// Raw, so that libvirt makes a plain file that the upload overwrites.
	volXML, err := rawVolumeXML(name, size)
	if err != nil {
		return fmt.Errorf("base volume %s: render xml: %w", name, err)
	}
	vol, err = do(ctx, func() (libvirt.StorageVol, error) { return c.lv.StorageVolCreateXML(p, string(volXML), 0) })
	if err != nil {
		return fmt.Errorf("base volume %s: create: %w", name, err)
	}
	if c.simulated {
		return nil // a volume of the right size is all the test driver keeps
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return c.dropVolume(vol, fmt.Errorf("base volume %s: %w", name, err))
	}
	// Hash what is sent too: the file may have changed since it was checked.
	h.Reset()
	src := io.TeeReader(ctxReader{ctx: ctx, r: f}, h)
	if err := c.lv.StorageVolUpload(vol, src, 0, uint64(size), 0); err != nil {
		return c.dropVolume(vol, fmt.Errorf("base volume %s: upload: %w", name, err))
	}
	if got := hexSum(h); got != string(want) {
		return c.dropVolume(vol, fmt.Errorf("base volume %s: %s changed during upload (sha256 %s)", name, srcPath, got))
	}
	// Let libvirt probe the image so the volume reports its real format.
	if err := do0(ctx, func() error { return c.lv.StoragePoolRefresh(p, 0) }); err != nil {
		return fmt.Errorf("storage pool %s: refresh: %w", pool, err)
	}
	markerXML, err := rawVolumeXML(uploadMarker(name, string(want)), 0)
	if err != nil {
		return fmt.Errorf("base volume %s: render marker xml: %w", name, err)
	}
	if _, err := do(ctx, func() (libvirt.StorageVol, error) { return c.lv.StorageVolCreateXML(p, string(markerXML), 0) }); err != nil {
		return fmt.Errorf("base volume %s: record the finished upload: %w", name, err)
	}
	return nil
}

// rawVolumeXML renders a sparse raw volume of size bytes.
func rawVolumeXML(name string, size int64) ([]byte, error) {
	return xml.Marshal(xVolume{
		Name:       name,
		Capacity:   xSize{Unit: "bytes", Value: size},
		Allocation: &xSize{Unit: "bytes", Value: 0},
		Target:     xVolTarget{Format: xFormat{Type: "raw"}},
	})
}

// uploadMarker names the empty volume that records that volume name holds
// the whole image whose SHA-256 is sum.
func uploadMarker(name, sum string) string { return name + ".sha256-" + sum }

// uploadComplete reports whether base volume vol was uploaded whole from
// the image with SHA-256 sum and size bytes, and is still that size.
func (c *Conn) uploadComplete(ctx context.Context, p libvirt.StoragePool, vol libvirt.StorageVol, sum string, size int64) (bool, error) {
	if _, ok, err := c.volume(ctx, p, uploadMarker(vol.Name, sum)); err != nil || !ok {
		return false, err
	}
	physical, err := do(ctx, func() (uint64, error) {
		_, _, physical, err := c.lv.StorageVolGetInfoFlags(vol, uint32(libvirt.StorageVolGetPhysical))
		return physical, err
	})
	if err != nil {
		return false, fmt.Errorf("base volume %s: size: %w", vol.Name, err)
	}
	return physical == uint64(size), nil
}

// dropUploadMarkers deletes every record of a finished upload into volume
// name, whatever image it named.
func (c *Conn) dropUploadMarkers(ctx context.Context, p libvirt.StoragePool, name string) error {
	vols, err := do(ctx, func() ([]libvirt.StorageVol, error) {
		vols, _, err := c.lv.StoragePoolListAllVolumes(p, 1, 0)
		return vols, err
	})
	if err != nil {
		return fmt.Errorf("storage pool %s: list volumes: %w", p.Name, err)
	}
	prefix := uploadMarker(name, "")
	for _, v := range vols {
		if !strings.HasPrefix(v.Name, prefix) {
			continue
		}
		if err := do0(ctx, func() error { return c.lv.StorageVolDelete(v, 0) }); err != nil && !isCode(err, libvirt.ErrNoStorageVol) {
			return fmt.Errorf("base volume %s: delete the record of an earlier upload: %w", name, err)
		}
	}
	return nil
}

// dropVolume deletes a half-made volume and returns cause. It runs even when
// the caller's context has ended, so nothing is left behind.
func (c *Conn) dropVolume(vol libvirt.StorageVol, cause error) error {
	if err := c.lv.StorageVolDelete(vol, 0); err != nil && !isCode(err, libvirt.ErrNoStorageVol) {
		return fmt.Errorf("%w (and deleting the partial volume failed: %w)", cause, err)
	}
	return cause
}

// EnsureDisk makes sure pool holds volume name: a qcow2 copy-on-write
// overlay of volume base with a capacity of sizeGiB, and returns its path on
// the host. An existing volume is kept when it has that backing file (its
// contents are the VM's).
func (c *Conn) EnsureDisk(ctx context.Context, pool, name, base string, sizeGiB int64) (string, error) {
	if sizeGiB < 1 {
		return "", fmt.Errorf("disk %s: %w: size %d GiB", name, ErrInvalid, sizeGiB)
	}
	p, err := c.pool(ctx, pool)
	if err != nil {
		return "", err
	}
	bv, ok, err := c.volume(ctx, p, base)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("disk %s: base volume %s in pool %s: %w", name, base, pool, ErrNotFound)
	}
	bx, err := c.volumeXML(ctx, bv)
	if err != nil {
		return "", err
	}
	if vol, ok, err := c.volume(ctx, p, name); err != nil {
		return "", err
	} else if ok {
		vx, err := c.volumeXML(ctx, vol)
		if err != nil {
			return "", err
		}
		if vx.Backing == nil || vx.Backing.Path != bx.Target.Path {
			return "", fmt.Errorf("disk %s: %w: volume exists but is not an overlay of %s", name, ErrInvalid, bx.Target.Path)
		}
		return vx.Target.Path, nil
	}

	backingFormat := bx.Target.Format.Type
	if backingFormat == "" {
		backingFormat = "raw"
	}
	volXML, err := xml.Marshal(xVolume{
		Name:     name,
		Capacity: xSize{Unit: "GiB", Value: sizeGiB},
		Target:   xVolTarget{Format: xFormat{Type: "qcow2"}},
		Backing:  &xBacking{Path: bx.Target.Path, Format: xFormat{Type: backingFormat}},
	})
	if err != nil {
		return "", fmt.Errorf("disk %s: render xml: %w", name, err)
	}
	vol, err := do(ctx, func() (libvirt.StorageVol, error) { return c.lv.StorageVolCreateXML(p, string(volXML), 0) })
	if err != nil {
		return "", fmt.Errorf("disk %s: create overlay of %s: %w", name, base, err)
	}
	path, err := do(ctx, func() (string, error) { return c.lv.StorageVolGetPath(vol) })
	if err != nil {
		return "", fmt.Errorf("disk %s: path: %w", name, err)
	}
	return path, nil
}

// GrowDisk makes volume name in pool at least sizeGiB large and returns
// its path on the host. It never shrinks a volume; one already that large
// is left alone. The guest must be off: QEMU holds a running guest's disk
// image locked. The guest's file system is not touched; cloud-init grows it
// to the disk at the next boot. libvirt's test driver cannot resize
// volumes and keeps no data, so there the volume is only looked up.
func (c *Conn) GrowDisk(ctx context.Context, pool, name string, sizeGiB int64) (string, error) {
	if sizeGiB < 1 {
		return "", fmt.Errorf("disk %s: %w: size %d GiB", name, ErrInvalid, sizeGiB)
	}
	p, err := c.pool(ctx, pool)
	if err != nil {
		return "", err
	}
	vol, ok, err := c.volume(ctx, p, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("disk %s in pool %s: %w", name, pool, ErrNotFound)
	}
	path, err := do(ctx, func() (string, error) { return c.lv.StorageVolGetPath(vol) })
	if err != nil {
		return "", fmt.Errorf("disk %s: path: %w", name, err)
	}
	if c.simulated {
		return path, nil
	}
	capacity, err := do(ctx, func() (uint64, error) {
		_, capacity, _, err := c.lv.StorageVolGetInfo(vol)
		return capacity, err
	})
	if err != nil {
		return "", fmt.Errorf("disk %s: size: %w", name, err)
	}
	want := uint64(sizeGiB) << 30
	if capacity >= want {
		return path, nil
	}
	// Without the shrink flag libvirt refuses a smaller size as well.
	if err := do0(ctx, func() error { return c.lv.StorageVolResize(vol, want, 0) }); err != nil {
		return "", fmt.Errorf("disk %s: grow from %d to %d GiB: %w", name, capacity>>30, sizeGiB, err)
	}
	return path, nil
}

// DeleteDisk overwrites volume name with zeros, so the next tenant of the
// blocks cannot read it, then deletes it. wiped is false when the pool's
// driver cannot wipe (the volume is deleted all the same). An absent volume
// is fine.
func (c *Conn) DeleteDisk(ctx context.Context, pool, name string) (wiped bool, err error) {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return false, err
	}
	vol, ok, err := c.volume(ctx, p, name)
	if err != nil || !ok {
		return false, err
	}
	err = do0(ctx, func() error { return c.lv.StorageVolWipe(vol, 0) })
	switch {
	case err == nil:
		wiped = true
	case isCode(err, libvirt.ErrNoSupport, libvirt.ErrOperationUnsupported):
	case isCode(err, libvirt.ErrNoStorageVol):
		return false, nil
	default:
		return false, fmt.Errorf("disk %s: wipe: %w", name, err)
	}
	err = do0(ctx, func() error { return c.lv.StorageVolDelete(vol, 0) })
	if err != nil && !isCode(err, libvirt.ErrNoStorageVol) {
		return wiped, fmt.Errorf("disk %s: delete: %w", name, err)
	}
	return wiped, nil
}

func (c *Conn) pool(ctx context.Context, name string) (libvirt.StoragePool, error) {
	p, err := do(ctx, func() (libvirt.StoragePool, error) { return c.lv.StoragePoolLookupByName(name) })
	if isCode(err, libvirt.ErrNoStoragePool) {
		return p, fmt.Errorf("storage pool %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("storage pool %s: %w", name, err)
	}
	return p, nil
}

// volume finds a volume; ok is false when it does not exist.
func (c *Conn) volume(ctx context.Context, p libvirt.StoragePool, name string) (libvirt.StorageVol, bool, error) {
	v, err := do(ctx, func() (libvirt.StorageVol, error) { return c.lv.StorageVolLookupByName(p, name) })
	if isCode(err, libvirt.ErrNoStorageVol) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("volume %s in pool %s: %w", name, p.Name, err)
	}
	return v, true, nil
}

func (c *Conn) volumeXML(ctx context.Context, v libvirt.StorageVol) (xVolume, error) {
	s, err := do(ctx, func() (string, error) { return c.lv.StorageVolGetXMLDesc(v, 0) })
	if err != nil {
		return xVolume{}, fmt.Errorf("volume %s xml: %w", v.Name, err)
	}
	var x xVolume
	if err := xml.Unmarshal([]byte(s), &x); err != nil {
		return xVolume{}, fmt.Errorf("parse volume %s xml: %w", v.Name, err)
	}
	return x, nil
}

// xVolume is the subset of libvirt's storage volume XML that we read and
// write (https://libvirt.org/formatstorage.html).
type xVolume struct {
	XMLName    xml.Name   `xml:"volume"`
	Name       string     `xml:"name"`
	Capacity   xSize      `xml:"capacity"`
	Allocation *xSize     `xml:"allocation"`
	Target     xVolTarget `xml:"target"`
	Backing    *xBacking  `xml:"backingStore"`
}

type xVolTarget struct {
	Path   string  `xml:"path,omitempty"`
	Format xFormat `xml:"format"`
}

type xBacking struct {
	Path   string  `xml:"path"`
	Format xFormat `xml:"format"`
}

type xFormat struct {
	Type string `xml:"type,attr"`
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// ctxReader ends a stream when ctx ends: go-libvirt's streams take no
// context.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

// CopyVolume makes volume dst in pool a full, self-contained copy of
// volume src: a qcow2 image with src's contents read through its backing
// chain (libvirt runs qemu-img convert), so that it outlives src's base
// image. An existing dst, as left by an interrupted copy, is replaced. It
// returns the bytes dst takes in the pool. The guest using src must be
// off: QEMU holds a running guest's disk image locked.
func (c *Conn) CopyVolume(ctx context.Context, pool, src, dst string) (int64, error) {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return 0, err
	}
	sv, ok, err := c.volume(ctx, p, src)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("copy volume %s: %w", src, ErrNotFound)
	}
	sx, err := c.volumeXML(ctx, sv)
	if err != nil {
		return 0, err
	}
	volXML, err := c.replaceableQcow2(ctx, p, dst, sx.Capacity)
	if err != nil {
		return 0, err
	}
	vol, err := do(ctx, func() (libvirt.StorageVol, error) { return c.lv.StorageVolCreateXMLFrom(p, volXML, sv, 0) })
	if err != nil {
		return 0, fmt.Errorf("copy volume %s to %s: %w", src, dst, err)
	}
	alloc, err := do(ctx, func() (uint64, error) {
		_, _, alloc, err := c.lv.StorageVolGetInfo(vol)
		return alloc, err
	})
	if err != nil {
		return 0, fmt.Errorf("volume %s: size: %w", dst, err)
	}
	if c.simulated && alloc == 0 {
		alloc = 1 << 20 // the test driver keeps no data; a copy still takes room
	}
	return int64(alloc), nil
}

// replaceableQcow2 deletes volume name of pool p, as left by an earlier
// interrupted copy, and returns the XML of a qcow2 volume of that name and
// capacity to create in its place.
func (c *Conn) replaceableQcow2(ctx context.Context, p libvirt.StoragePool, name string, capacity xSize) (string, error) {
	if old, ok, err := c.volume(ctx, p, name); err != nil {
		return "", err
	} else if ok {
		if err := do0(ctx, func() error { return c.lv.StorageVolDelete(old, 0) }); err != nil && !isCode(err, libvirt.ErrNoStorageVol) {
			return "", fmt.Errorf("volume %s: delete earlier copy: %w", name, err)
		}
	}
	if capacity.Unit == "" {
		capacity.Unit = "bytes"
	}
	volXML, err := xml.Marshal(xVolume{Name: name, Capacity: capacity, Target: xVolTarget{Format: xFormat{Type: "qcow2"}}})
	if err != nil {
		return "", fmt.Errorf("volume %s: render xml: %w", name, err)
	}
	return string(volXML), nil
}

// ReplaceVolume replaces volume dst in pool with a full copy of volume
// src, keeping dst's name and so its path: the guest using dst must be
// off. src must exist; dst may be absent, as after an interrupted replace,
// so the call can simply be repeated. dst's old contents are deleted, not
// wiped: they belong to the same guest that gets the copy.
func (c *Conn) ReplaceVolume(ctx context.Context, pool, src, dst string) error {
	p, err := c.pool(ctx, pool)
	if err != nil {
		return err
	}
	if _, ok, err := c.volume(ctx, p, src); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("replace volume %s: source %s: %w", dst, src, ErrNotFound)
	}
	_, err = c.CopyVolume(ctx, pool, src, dst)
	return err
}
