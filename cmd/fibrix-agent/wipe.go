package main

import (
	"fmt"
	"io"
	"os"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

// wipeSpan is zeroed at each end of a disk: it covers the MBR, the primary
// GPT at the start and the backup GPT at the end, and the superblocks of
// filesystems and RAID/LVM metadata that sit near either end.
const wipeSpan = 16 << 20

// wipeAll quick-wipes every disk the inventory finds and returns the names
// of the disks it wiped.
func (a *agent) wipeAll() ([]string, error) {
	inv, err := inventory.Collect(a.cfg.root)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var wiped []string
	for _, d := range inv.Disks {
		if err := quickWipe(a.devPath(d.Name)); err != nil {
			return wiped, fmt.Errorf("wipe %s: %w", d.Name, err)
		}
		a.log.Info("quick wipe done", "disk", d.Name)
		wiped = append(wiped, d.Name)
	}
	return wiped, nil
}

// quickWipe zeroes the first and last wipeSpan bytes of the disk (all of it
// when it is smaller than two spans).
func quickWipe(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd) // works on block devices, unlike Stat
	if err != nil {
		return err
	}
	zero := make([]byte, 1<<20)
	zeroAt := func(off, n int64) error {
		for n > 0 {
			c := min(n, int64(len(zero)))
			if _, err := f.WriteAt(zero[:c], off); err != nil {
				return err
			}
			off, n = off+c, n-c
		}
		return nil
	}
	if size <= 2*wipeSpan {
		if err := zeroAt(0, size); err != nil {
			return err
		}
	} else if err := zeroAt(0, wipeSpan); err != nil {
		return err
	} else if err := zeroAt(size-wipeSpan, wipeSpan); err != nil {
		return err
	}
	return f.Sync()
}
