package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// kernelPartitions reaches partitions through the running kernel: sysfs
// lists them and devtmpfs makes their nodes (the agent's initramfs has no
// udev).
type kernelPartitions struct {
	sysBlock string // /sys/block
	devDir   string // where device nodes are
}

// partitionWait bounds the waits for the kernel: a busy disk before the
// re-read and the partition nodes after it.
const partitionWait = 10 * time.Second

func (k kernelPartitions) Rescan(ctx context.Context, disk string) ([]string, error) {
	f, err := os.Open(filepath.Join(k.devDir, disk))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deadline := time.Now().Add(partitionWait)
	// EBUSY means a partition of the disk is still open; nothing should hold
	// one here, but a straggler gets a moment to let go.
	for {
		err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return nil, fmt.Errorf("BLKRRPART: %w", err)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	parts, err := listPartitions(filepath.Join(k.sysBlock, disk))
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		for {
			fi, err := os.Stat(filepath.Join(k.devDir, p))
			if err == nil && fi.Mode()&fs.ModeDevice != 0 {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no device node for partition %s after %v", p, partitionWait)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	return parts, nil
}

func (k kernelPartitions) Mount(part string, writable bool) (string, func() error, error) {
	dir, err := os.MkdirTemp("", "fibrix-"+part+"-")
	if err != nil {
		return "", nil, err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME)
	data := ""
	if !writable {
		// noload: not even a journal replay writes to a partition that is
		// only looked at.
		flags |= unix.MS_RDONLY
		data = "noload"
	}
	if err := unix.Mount(filepath.Join(k.devDir, part), dir, "ext4", flags, data); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mount ext4: %w", err)
	}
	unmount := func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			return err
		}
		unix.Sync()
		return os.Remove(dir)
	}
	return dir, unmount, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
