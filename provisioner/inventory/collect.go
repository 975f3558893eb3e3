package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Collect reads the inventory of the machine whose /proc, /sys and /dev are
// under root ("/" on the machine itself; a fake tree in tests). Only missing
// CPU or memory information is an error: a machine without disks or NICs is
// reported as such and the region decides what to make of it.
func Collect(root string) (Inventory, error) {
	var inv Inventory
	b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return inv, fmt.Errorf("read cpuinfo: %w", err)
	}
	inv.CPU = ParseCPUInfo(string(b))
	if inv.MemoryMiB, err = memoryMiB(root); err != nil {
		return inv, err
	}
	if inv.Disks, err = disks(root); err != nil {
		return inv, err
	}
	if inv.NICs, err = nics(root); err != nil {
		return inv, err
	}
	inv.BMC = bmc(root)
	return inv, nil
}

// ParseCPUInfo reads /proc/cpuinfo: the first model name, one thread per
// "processor" entry, and cores as distinct (physical id, core id) pairs —
// equal to threads when the kernel does not report topology (some VMs).
func ParseCPUInfo(s string) CPU {
	var c CPU
	type core struct{ pkg, id string }
	cores := map[core]bool{}
	var cur core
	var hasCore bool
	flush := func() {
		if hasCore {
			cores[cur] = true
		}
		cur, hasCore = core{}, false
	}
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			if strings.TrimSpace(line) == "" {
				flush()
			}
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			c.Threads++
		case "model name":
			if c.Model == "" {
				c.Model = v
			}
		case "physical id":
			cur.pkg = v
		case "core id":
			cur.id, hasCore = v, true
		}
	}
	flush()
	c.Cores = len(cores)
	if c.Cores == 0 || c.Cores > c.Threads {
		c.Cores = c.Threads
	}
	return c
}

// ParseMemInfo returns MemTotal from /proc/meminfo in MiB.
func ParseMemInfo(s string) (int64, error) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 {
				return 0, fmt.Errorf("meminfo: bad MemTotal %q", f[1])
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("meminfo: no MemTotal")
}

// memoryMiB prefers the installed memory (online memory blocks in
// /sys/devices/system/memory) over MemTotal, which is smaller by what the
// kernel reserved for itself and so not what staff know the machine by.
func memoryMiB(root string) (int64, error) {
	if n, ok := memoryBlocksMiB(filepath.Join(root, "sys/devices/system/memory")); ok {
		return n, nil
	}
	b, err := os.ReadFile(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	return ParseMemInfo(string(b))
}

func memoryBlocksMiB(dir string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "block_size_bytes"))
	if err != nil {
		return 0, false
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(b)), 16, 64)
	if err != nil || size <= 0 {
		return 0, false
	}
	blocks, _ := filepath.Glob(filepath.Join(dir, "memory[0-9]*"))
	var online int64
	for _, m := range blocks {
		if readTrim(filepath.Join(m, "online")) == "1" {
			online++
		}
	}
	if online == 0 {
		return 0, false
	}
	return online * size >> 20, true
}

// SkipDisk tells block devices that are not disks a machine could be
// deployed to: loop, RAM, compressed RAM, optical and floppy drives, and
// device-mapper/md devices built on top of real disks.
func SkipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func disks(root string) ([]Disk, error) {
	dir := filepath.Join(root, "sys/block")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		if SkipDisk(name) {
			continue
		}
		d := filepath.Join(dir, name)
		sectors, err := strconv.ParseInt(readTrim(filepath.Join(d, "size")), 10, 64)
		if err != nil || sectors <= 0 {
			continue // an empty card reader or a device going away
		}
		disk := Disk{
			Name:       name,
			SizeBytes:  sectors * 512, // sysfs counts 512-byte sectors whatever the logical block size
			Model:      readTrim(filepath.Join(d, "device/model")),
			Rotational: readTrim(filepath.Join(d, "queue/rotational")) == "1",
		}
		// virtio-blk keeps its serial on the disk, NVMe on the controller,
		// SCSI and SATA (through libata) in VPD page 0x80.
		disk.Serial = readTrim(filepath.Join(d, "serial"))
		if disk.Serial == "" {
			disk.Serial = readTrim(filepath.Join(d, "device/serial"))
		}
		if disk.Serial == "" {
			if b, err := os.ReadFile(filepath.Join(d, "device/vpd_pg80")); err == nil {
				disk.Serial = ParseVPDSerial(b)
			}
		}
		out = append(out, disk)
	}
	return out, nil
}

// ParseVPDSerial reads the unit serial number from a SCSI VPD page 0x80:
// a 4-byte header whose last byte is the length, then ASCII padded with
// spaces.
func ParseVPDSerial(b []byte) string {
	if len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[3])
	if 4+n > len(b) {
		n = len(b) - 4
	}
	return strings.TrimSpace(strings.TrimRight(string(b[4:4+n]), "\x00"))
}

func nics(root string) ([]NIC, error) {
	dir := filepath.Join(root, "sys/class/net")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []NIC
	for _, e := range ents {
		d := filepath.Join(dir, e.Name())
		// Only interfaces backed by a device: no lo, bridges, bonds or tunnels.
		if _, err := os.Stat(filepath.Join(d, "device")); err != nil {
			continue
		}
		n := NIC{
			Name: e.Name(),
			MAC:  strings.ToLower(readTrim(filepath.Join(d, "address"))),
			// carrier cannot be read while the interface is down; operstate can.
			Link: readTrim(filepath.Join(d, "carrier")) == "1" || readTrim(filepath.Join(d, "operstate")) == "up",
		}
		if s, err := strconv.Atoi(readTrim(filepath.Join(d, "speed"))); err == nil && s > 0 {
			n.SpeedMbps = s
		}
		out = append(out, n)
	}
	return out, nil
}

func bmc(root string) BMC {
	var seen []string
	for _, p := range []string{"dev/ipmi0", "dev/ipmi/0", "dev/ipmidev/0"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			seen = append(seen, "/"+p)
		}
	}
	if len(seen) == 0 {
		return BMC{}
	}
	slices.Sort(seen)
	return BMC{Present: true, Note: "IPMI device " + strings.Join(seen, ", ") + " present (in-band; details not read)"}
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
