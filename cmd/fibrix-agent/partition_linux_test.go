package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The kernel paths proper run in TestBoot; here, what a disk that is not a
// block device gets.
func TestKernelPartitionsNotABlockDevice(t *testing.T) {
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "vda"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, "vda1"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	k := kernelPartitions{sysBlock: filepath.Join(t.TempDir(), "sys/block"), devDir: dev}
	if _, err := k.Rescan(t.Context(), "vda"); err == nil || !strings.Contains(err.Error(), "BLKRRPART") {
		t.Errorf("Rescan of a regular file = %v, want a BLKRRPART error", err)
	}
	if _, err := k.Rescan(t.Context(), "vdb"); err == nil {
		t.Error("Rescan of a missing disk succeeded")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, _, err := k.Mount("vda1", false); err == nil || !strings.HasPrefix(err.Error(), "mount ext4: ") {
		t.Errorf("Mount of a regular file = %v, want a mount error", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("Mount left %d mount points behind", len(left))
	}
}
