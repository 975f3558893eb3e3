package fleet

import (
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
)

// TestRates turns two readings into rates, and gives none when a counter
// went down (the QEMU process restarted) or no time passed.
func TestRates(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	base := hypervisor.DomainStats{CPUTimeNs: 10e9, VCPUs: 2, CurrentKiB: 1 << 20, RSSKiB: 300 << 10,
		DiskReadBytes: 1000, DiskWriteBytes: 2000, NetRxBytes: 3000, NetTxBytes: 4000}
	next := base
	next.CPUTimeNs += 60e9 // one of two vCPUs busy for a minute
	next.DiskReadBytes += 6000
	next.NetTxBytes += 600
	x, ok := rates("vm", reading{t0, base}, reading{t0.Add(time.Minute), next})
	if !ok || x.CPUPercent != 50 || x.DiskReadBps != 100 || x.DiskWriteBps != 0 || x.NetTxBps != 10 ||
		x.MemUsedBytes != 300<<20 || x.MemAvailableBytes != 1<<30 || !x.At.Equal(t0.Add(time.Minute)) {
		t.Errorf("rates = %+v, %v", x, ok)
	}
	guest := next
	guest.AvailableKiB, guest.UnusedKiB = 1000<<10, 400<<10
	if x, _ := rates("vm", reading{t0, base}, reading{t0.Add(time.Minute), guest}); x.MemUsedBytes != 600<<20 || x.MemAvailableBytes != 1000<<20 {
		t.Errorf("with guest statistics: %+v", x)
	}
	for name, cur := range map[string]hypervisor.DomainStats{
		"cpu reset":  {CPUTimeNs: 1e9, VCPUs: 2, DiskReadBytes: 7000, DiskWriteBytes: 2000, NetRxBytes: 3000, NetTxBytes: 4600},
		"disk reset": {CPUTimeNs: 80e9, VCPUs: 2, DiskReadBytes: 10, DiskWriteBytes: 2000, NetRxBytes: 3000, NetTxBytes: 4600},
		"net reset":  {CPUTimeNs: 80e9, VCPUs: 2, DiskReadBytes: 7000, DiskWriteBytes: 2000, NetRxBytes: 3000, NetTxBytes: 5},
	} {
		if x, ok := rates("vm", reading{t0.Add(time.Minute), next}, reading{t0.Add(2 * time.Minute), cur}); ok {
			t.Errorf("%s: a sample %+v", name, x)
		}
	}
	if _, ok := rates("vm", reading{t0, base}, reading{t0, next}); ok {
		t.Error("no time passed: a sample")
	}
	over := next
	over.CPUTimeNs = base.CPUTimeNs + 200e9
	if x, _ := rates("vm", reading{t0, base}, reading{t0.Add(time.Minute), over}); x.CPUPercent != 100 {
		t.Errorf("cpu above all vCPUs: %v", x.CPUPercent)
	}
}
