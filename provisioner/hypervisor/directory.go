package hypervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"path"

	"github.com/digitalocean/go-libvirt"
)

// EnsureDirectory makes sure dir exists on the host, creating it (and its
// parents) when it does not. libvirt has no call for that, and a remote host
// offers nothing else, so a transient directory storage pool at dir is
// started with the build flag — libvirt creates the directory — and
// destroyed again, which leaves the directory and its contents alone. A
// path that exists but is not a directory, or cannot be made, is refused
// with libvirt's reason.
func (c *Conn) EnsureDirectory(ctx context.Context, dir string) error {
	if dir == "" || !path.IsAbs(dir) || path.Clean(dir) != dir {
		return fmt.Errorf("directory %q: %w: want a clean absolute path", dir, ErrInvalid)
	}
	if c.simulated {
		return nil // the test driver has no file system
	}
	// A pool the host already has at dir proves the directory exists, and
	// libvirt would refuse a second pool on the same target.
	if p, err := do(ctx, func() (libvirt.StoragePool, error) { return c.lv.StoragePoolLookupByTargetPath(dir) }); err == nil {
		active, err := do(ctx, func() (int32, error) { return c.lv.StoragePoolIsActive(p) })
		if err == nil && active == 1 {
			return nil
		}
	}
	sum := sha256.Sum256([]byte(dir))
	name := "fibrix-dir-" + hex.EncodeToString(sum[:6])
	// A transient pool left by an interrupted call would block the name.
	if p, err := do(ctx, func() (libvirt.StoragePool, error) { return c.lv.StoragePoolLookupByName(name) }); err == nil {
		_ = do0(ctx, func() error { return c.lv.StoragePoolDestroy(p) })
	}
	x, err := xml.Marshal(xDirPool{
		Type: "dir", Name: name,
		Target: xDirPoolTarget{Path: dir, Mode: "0755"},
	})
	if err != nil {
		return fmt.Errorf("directory %s: render pool xml: %w", dir, err)
	}
	p, err := do(ctx, func() (libvirt.StoragePool, error) {
		return c.lv.StoragePoolCreateXML(string(x), libvirt.StoragePoolCreateWithBuild)
	})
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if err := do0(ctx, func() error { return c.lv.StoragePoolDestroy(p) }); err != nil {
		return fmt.Errorf("directory %s: stop the pool that created it: %w", dir, err)
	}
	return nil
}

type xDirPool struct {
	XMLName xml.Name       `xml:"pool"`
	Type    string         `xml:"type,attr"`
	Name    string         `xml:"name"`
	Target  xDirPoolTarget `xml:"target"`
}

type xDirPoolTarget struct {
	Path string `xml:"path"`
	Mode string `xml:"permissions>mode"`
}
