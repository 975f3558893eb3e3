package hypervisor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/digitalocean/go-libvirt"
)

// DomainStats are the counters of one running domain, as libvirt's bulk
// domain statistics report them. Counters grow for the life of the QEMU
// process and start again from zero when it is restarted.
type DomainStats struct {
	Name string
	// CPUTimeNs is the CPU time the domain used, in nanoseconds.
	CPUTimeNs uint64
	// VCPUs is the number of vCPUs online.
	VCPUs int
	// Memory in KiB, from the balloon: Current is the memory given to the
	// guest and RSS what the QEMU process holds on the host. Available and
	// Unused come from the guest and are zero unless it reports statistics.
	CurrentKiB, RSSKiB, AvailableKiB, UnusedKiB uint64
	// Sums over the domain's disks and interfaces.
	DiskReadBytes, DiskWriteBytes uint64
	NetRxBytes, NetTxBytes        uint64
}

// DomainStats returns the statistics of every running domain on the host.
func (c *Conn) DomainStats(ctx context.Context) ([]DomainStats, error) {
	types := libvirt.DomainStatsCPUTotal | libvirt.DomainStatsBalloon | libvirt.DomainStatsVCPU |
		libvirt.DomainStatsInterface | libvirt.DomainStatsBlock
	recs, err := do(ctx, func() ([]libvirt.DomainStatsRecord, error) {
		return c.lv.ConnectGetAllDomainStats(nil, uint32(types), uint32(libvirt.ConnectGetAllDomainsStatsActive))
	})
	if err != nil {
		return nil, fmt.Errorf("domain statistics: %w", err)
	}
	out := make([]DomainStats, 0, len(recs))
	for _, r := range recs {
		out = append(out, parseStats(r.Dom.Name, r.Params))
	}
	return out, nil
}

func parseStats(name string, params []libvirt.TypedParam) DomainStats {
	s := DomainStats{Name: name}
	for _, p := range params {
		v, ok := unsigned(p.Value.I)
		if !ok {
			continue
		}
		switch f := p.Field; {
		case f == "cpu.time":
			s.CPUTimeNs = v
		case f == "vcpu.current":
			s.VCPUs = int(v)
		case f == "balloon.current":
			s.CurrentKiB = v
		case f == "balloon.rss":
			s.RSSKiB = v
		case f == "balloon.available":
			s.AvailableKiB = v
		case f == "balloon.unused":
			s.UnusedKiB = v
		case indexed(f, "block.", ".rd.bytes"):
			s.DiskReadBytes += v
		case indexed(f, "block.", ".wr.bytes"):
			s.DiskWriteBytes += v
		case indexed(f, "net.", ".rx.bytes"):
			s.NetRxBytes += v
		case indexed(f, "net.", ".tx.bytes"):
			s.NetTxBytes += v
		}
	}
	return s
}

// indexed reports whether field is prefix<n>suffix, as in block.0.rd.bytes.
func indexed(field, prefix, suffix string) bool {
	mid, ok := strings.CutPrefix(field, prefix)
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, suffix)
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(mid, 10, 32)
	return err == nil
}

func unsigned(v any) (uint64, bool) {
	switch n := v.(type) {
	case uint64:
		return n, true
	case uint32:
		return uint64(n), true
	case int64:
		return uint64(max(n, 0)), true
	case int32:
		return uint64(max(n, 0)), true
	}
	return 0, false
}
