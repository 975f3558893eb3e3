// Package capacity is the arithmetic of KVM host capacity under overcommit:
// what a host can still take, which host a new VM should go to, and how to
// explain a refusal. It does no I/O, so the order form, the order-time
// check, placement and the host page all answer from the same code.
package capacity

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Ratio bounds staff may set, and the defaults for new hosts.
const (
	MinCPURatio    = 1.0
	MaxCPURatio    = 16.0
	MinMemoryRatio = 0.5
	MaxMemoryRatio = 4.0
	MinDiskRatio   = 0.5
	MaxDiskRatio   = 10.0

	DefaultCPURatio    = 4.0
	DefaultMemoryRatio = 1.0
	DefaultDiskRatio   = 1.0
)

// Epsilon absorbs binary rounding in physical × ratio (2.3 × 100 is
// 229.99999999999997 in float64). The database guard adds the same amount,
// so Go and SQL agree on every limit.
const Epsilon = 1e-6

// Resources is an amount of each resource a VM needs or a host holds.
type Resources struct {
	VCPUs     int64
	MemoryMiB int64
	DiskGiB   int64
}

// Host is what placement needs to know about one KVM host.
type Host struct {
	ID          string
	Name        string
	Enabled     bool
	Maintenance bool
	Ready       bool // facts discovered and the host answered

	Cores     int64
	MemoryMiB int64
	DiskGiB   int64

	CPURatio    float64
	MemoryRatio float64
	DiskRatio   float64

	Reserved  Resources // ReservedCores counts as vCPUs
	Allocated Resources
}

// Usable reports whether new VMs may be placed on the host at all.
func (h Host) Usable() bool { return h.Enabled && !h.Maintenance && h.Ready }

// Overcommitted returns floor(physical × ratio) for each resource.
func Overcommitted(physical int64, ratio float64) int64 {
	// The explicit conversion stops the compiler fusing the multiply and
	// add, which the database does not do either.
	return int64(math.Floor(float64(float64(physical)*ratio) + Epsilon))
}

// Figure is one resource of a host, as the host page shows it.
type Figure struct {
	Physical  int64
	Ratio     float64
	Capacity  int64 // floor(Physical × Ratio)
	Reserved  int64
	Allocated int64
	Free      int64 // Capacity − Reserved − Allocated; negative after staff lower a ratio below what is placed
}

// Figures are a host's three resources.
type Figures struct {
	CPU    Figure // vCPUs; Physical is cores
	Memory Figure // MiB
	Disk   Figure // GiB
}

func figure(physical int64, ratio float64, reserved, allocated int64) Figure {
	c := Overcommitted(physical, ratio)
	return Figure{Physical: physical, Ratio: ratio, Capacity: c, Reserved: reserved, Allocated: allocated, Free: c - reserved - allocated}
}

// Figures computes the host's capacity figures.
func (h Host) Figures() Figures {
	return Figures{
		CPU:    figure(h.Cores, h.CPURatio, h.Reserved.VCPUs, h.Allocated.VCPUs),
		Memory: figure(h.MemoryMiB, h.MemoryRatio, h.Reserved.MemoryMiB, h.Allocated.MemoryMiB),
		Disk:   figure(h.DiskGiB, h.DiskRatio, h.Reserved.DiskGiB, h.Allocated.DiskGiB),
	}
}

// Free is what the host can still take.
func (h Host) Free() Resources {
	return Resources{
		VCPUs:     Overcommitted(h.Cores, h.CPURatio) - h.Reserved.VCPUs - h.Allocated.VCPUs,
		MemoryMiB: Overcommitted(h.MemoryMiB, h.MemoryRatio) - h.Reserved.MemoryMiB - h.Allocated.MemoryMiB,
		DiskGiB:   Overcommitted(h.DiskGiB, h.DiskRatio) - h.Reserved.DiskGiB - h.Allocated.DiskGiB,
	}
}

func (f Resources) holds(n Resources) bool {
	return n.VCPUs <= f.VCPUs && n.MemoryMiB <= f.MemoryMiB && n.DiskGiB <= f.DiskGiB
}

// Fits reports whether a VM needing n fits on the host now, ignoring
// whether the host is usable.
func (h Host) Fits(n Resources) bool { return h.Free().holds(n) }

// memoryFraction is the share of the host's overcommitted memory still free.
func (h Host) memoryFraction(free Resources) float64 {
	c := Overcommitted(h.MemoryMiB, h.MemoryRatio)
	if c <= 0 {
		return 0
	}
	return float64(free.MemoryMiB) / float64(c)
}

// before reports whether a host with free-memory fraction fa and name/id
// a sorts before one with fb and b under s.
func before(s Strategy, fa float64, a *Host, fb float64, b *Host) bool {
	switch {
	case fa != fb:
		return (fa > fb) == (s != Pack)
	case a.Name != b.Name:
		return a.Name < b.Name
	}
	return a.ID < b.ID
}

// Strategy decides which of the hosts that fit is preferred.
type Strategy string

// Strategies.
const (
	// Spread prefers the host with the largest share of memory free, so
	// load and failures are spread out. The zero Strategy means Spread.
	Spread Strategy = "spread"
	// Pack prefers the fullest host that still fits, keeping whole hosts
	// free for large VMs and maintenance.
	Pack Strategy = "pack"
)

// ParseStrategy reads a strategy name; "" is Spread.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(strings.ToLower(strings.TrimSpace(s))) {
	case "", Spread:
		return Spread, nil
	case Pack:
		return Pack, nil
	}
	return "", fmt.Errorf("unknown placement strategy %q: use spread or pack", s)
}

// Rank returns the usable hosts that fit n, best first under strategy s.
// Ties go to the host with the lower name, then id, so the answer is stable.
func Rank(hosts []Host, n Resources, s Strategy) []Host {
	type scored struct {
		h    *Host
		frac float64
	}
	fit := make([]scored, 0, len(hosts))
	for i := range hosts {
		h := &hosts[i]
		if f := h.Free(); h.Usable() && f.holds(n) {
			fit = append(fit, scored{h, h.memoryFraction(f)})
		}
	}
	slices.SortFunc(fit, func(a, b scored) int {
		if before(s, a.frac, a.h, b.frac, b.h) {
			return -1
		}
		if before(s, b.frac, b.h, a.frac, a.h) {
			return 1
		}
		return 0
	})
	out := make([]Host, len(fit))
	for i, x := range fit {
		out[i] = *x.h
	}
	return out
}

// Best returns the preferred usable host for n under s (the first that
// Rank would return, without sorting), or a *Refusal explaining why none fits.
func Best(hosts []Host, n Resources, s Strategy) (Host, error) {
	best, bestFrac := -1, 0.0
	for i := range hosts {
		h := &hosts[i]
		f := h.Free()
		if !h.Usable() || !f.holds(n) {
			continue
		}
		if frac := h.memoryFraction(f); best < 0 || before(s, frac, h, bestFrac, &hosts[best]) {
			best, bestFrac = i, frac
		}
	}
	if best < 0 {
		return Host{}, Refuse(hosts, n)
	}
	return hosts[best], nil
}

// Fit reports nil when some usable host fits n now, else the *Refusal.
func Fit(hosts []Host, n Resources) error {
	for _, h := range hosts {
		if h.Usable() && h.Fits(n) {
			return nil
		}
	}
	return Refuse(hosts, n)
}

// Resource names a host resource.
type Resource string

// Resources a refusal can name.
const (
	CPU    Resource = "cpu"
	Memory Resource = "memory"
	Disk   Resource = "disk"
	// None means no host is usable at all.
	None Resource = ""
	// Combined means each resource is free somewhere, but never all on one host.
	Combined Resource = "combined"
)

// Refusal explains why a VM fits on no host. Its message names the binding
// resource with the figures of the host that comes closest; it is safe to
// show customers (it names no host).
type Refusal struct {
	Resource Resource
	Need     Resources
	Best     int64   // the most of Resource any usable host has free (never below 0)
	Ratio    float64 // that host's overcommit ratio for Resource
}

func (r *Refusal) Error() string {
	switch r.Resource {
	case None:
		return "no VM hosts are available; staff must add one"
	case CPU:
		return fmt.Sprintf("no host has %d vCPU free; best has %d at %s CPU overcommit", r.Need.VCPUs, r.Best, FormatRatio(r.Ratio))
	case Memory:
		return fmt.Sprintf("no host has %s RAM free; best has %s at %s memory overcommit", FormatMiB(r.Need.MemoryMiB), FormatMiBDown(r.Best), FormatRatio(r.Ratio))
	case Disk:
		return fmt.Sprintf("no host has %d GiB disk free; best has %d GiB at %s disk overcommit", r.Need.DiskGiB, r.Best, FormatRatio(r.Ratio))
	}
	return fmt.Sprintf("no host has %d vCPU, %s RAM and %d GiB disk free at the same time", r.Need.VCPUs, FormatMiB(r.Need.MemoryMiB), r.Need.DiskGiB)
}

// Refuse explains why n fits on none of hosts: the first resource, in the
// order vCPU, memory, disk, that no usable host has enough of.
func Refuse(hosts []Host, n Resources) *Refusal {
	type most struct {
		free  int64
		ratio float64
		seen  bool
	}
	var cpu, mem, disk most
	keep := func(m *most, free int64, ratio float64) {
		if !m.seen || free > m.free {
			*m = most{free, ratio, true}
		}
	}
	for _, h := range hosts {
		if !h.Usable() {
			continue
		}
		f := h.Free()
		keep(&cpu, f.VCPUs, h.CPURatio)
		keep(&mem, f.MemoryMiB, h.MemoryRatio)
		keep(&disk, f.DiskGiB, h.DiskRatio)
	}
	r := &Refusal{Need: n}
	switch {
	case !cpu.seen:
		r.Resource = None
	case n.VCPUs > cpu.free:
		r.Resource, r.Best, r.Ratio = CPU, max(cpu.free, 0), cpu.ratio
	case n.MemoryMiB > mem.free:
		r.Resource, r.Best, r.Ratio = Memory, max(mem.free, 0), mem.ratio
	case n.DiskGiB > disk.free:
		r.Resource, r.Best, r.Ratio = Disk, max(disk.free, 0), disk.ratio
	default:
		r.Resource = Combined
	}
	return r
}

// FormatRatio renders an overcommit ratio with at least one decimal: "1.0×", "1.5×", "2.25×".
func FormatRatio(r float64) string {
	s := strconv.FormatFloat(r, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s + "×"
}

// FormatMiB renders a memory size the way people read it: "512 MiB", "2 GiB", "6.2 GiB".
func FormatMiB(mib int64) string {
	if mib < 1024 {
		return strconv.FormatInt(mib, 10) + " MiB"
	}
	s := strconv.FormatFloat(float64(mib)/1024, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " GiB"
}

// FormatMiBDown is FormatMiB rounded down, so what a host has free never
// reads as the amount it is short of ("8 GiB" for 8191 MiB).
func FormatMiBDown(mib int64) string {
	if mib < 1024 {
		return FormatMiB(mib)
	}
	return FormatMiB(mib * 10 / 1024 * 1024 / 10)
}
