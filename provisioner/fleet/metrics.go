package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// domainPrefix is how the lifecycle names a VM's domain: fibrix-<vm id>.
const domainPrefix = "fibrix-"

// Sampler reads the statistics of every VM's domain on every host each
// interval and stores CPU, memory, disk and network samples. Rates come
// from the counters of two consecutive passes, so a VM's first sample
// follows the second pass that sees it running (which comes at most
// freshWait after the first).
type Sampler struct {
	st    *store.Store
	pool  *Pool
	every time.Duration
	log   *slog.Logger
	last  map[string]reading // by VM id
	now   func() time.Time
	// fresh is set by a pass that took the first reading of a domain: the
	// next pass comes sooner, so a new VM's first sample does not wait two
	// whole intervals.
	fresh bool
}

// freshWait bounds the wait after a pass that saw a new domain.
const freshWait = 10 * time.Second

type reading struct {
	at    time.Time
	stats hypervisor.DomainStats
}

// NewSampler makes a sampling loop that visits every host each interval.
func NewSampler(st *store.Store, pool *Pool, every time.Duration, log *slog.Logger) *Sampler {
	return &Sampler{st: st, pool: pool, every: every, log: log, last: map[string]reading{}, now: time.Now}
}

// Serve samples until ctx ends. A pass that fails is logged and the next
// waits longer, up to backoff.DefaultMax.
func (s *Sampler) Serve(ctx context.Context) error {
	passes := &backoff.Loop{Base: s.every, Max: max(s.every, backoff.DefaultMax), What: "metrics pass", Log: s.log}
	for {
		err := s.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := passes.Next(ctx, err)
		if err == nil && s.fresh {
			wait = min(wait, freshWait)
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// Pass samples every host once, then rolls up and prunes old samples. A
// host that cannot be read is logged and skipped; the error returned is
// the database's.
func (s *Sampler) Pass(ctx context.Context) error {
	hosts, err := s.st.ListHosts(ctx)
	if err != nil {
		return fmt.Errorf("list hosts: %w", err)
	}
	var samples []store.VMSample
	var errs []error
	seen := map[string]bool{}
	s.fresh = false
	for _, h := range hosts {
		if !h.Enabled || isSSH(h.URI) && h.SSHHostKey == "" {
			continue
		}
		got, err := s.host(ctx, h.Host, seen)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// One unreachable host must not slow the sampling of the
			// others: it is logged, and the pass goes on.
			s.pool.Forget(h.ID)
			s.log.Warn("host statistics not read; its VMs get no sample this pass", "host", h.Name, "err", err)
			continue
		}
		samples = append(samples, got...)
	}
	for id := range s.last {
		if !seen[id] {
			delete(s.last, id) // stopped or gone: its next run starts afresh
		}
	}
	if _, err := s.st.RecordVMSamples(ctx, samples); err != nil {
		errs = append(errs, err)
	}
	now := s.now()
	if _, err := s.st.RollupVMMetrics(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if _, err := s.st.PruneVMMetrics(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Sampler) host(ctx context.Context, h store.Host, seen map[string]bool) ([]store.VMSample, error) {
	c, err := s.pool.dial(ctx, h)
	if err != nil {
		return nil, err
	}
	stats, err := c.DomainStats(ctx)
	if err != nil {
		return nil, err
	}
	at := s.now()
	var out []store.VMSample
	for _, d := range stats {
		id, ok := strings.CutPrefix(d.Name, domainPrefix)
		if !ok || id == "" {
			continue
		}
		seen[id] = true
		prev, had := s.last[id]
		s.last[id] = reading{at: at, stats: d}
		if !had {
			s.fresh = true
			continue
		}
		if x, ok := rates(id, prev, reading{at: at, stats: d}); ok {
			out = append(out, x)
		}
	}
	return out, nil
}

// rates turns two readings of one domain into a sample. When a counter
// went down the domain's QEMU process was restarted (a stop and start, a
// reboot from the host, a rebuild): there is no rate then, and the new
// reading is the next baseline.
func rates(vmID string, prev, cur reading) (store.VMSample, bool) {
	secs := cur.at.Sub(prev.at).Seconds()
	p, c := prev.stats, cur.stats
	if secs <= 0 || c.CPUTimeNs < p.CPUTimeNs || c.DiskReadBytes < p.DiskReadBytes || c.DiskWriteBytes < p.DiskWriteBytes ||
		c.NetRxBytes < p.NetRxBytes || c.NetTxBytes < p.NetTxBytes {
		return store.VMSample{}, false
	}
	vcpus := max(c.VCPUs, 1)
	cpu := float64(c.CPUTimeNs-p.CPUTimeNs) / (secs * 1e9 * float64(vcpus)) * 100
	x := store.VMSample{
		VMID: vmID, At: cur.at.UTC(), CPUPercent: min(cpu, 100),
		DiskReadBps: float64(c.DiskReadBytes-p.DiskReadBytes) / secs, DiskWriteBps: float64(c.DiskWriteBytes-p.DiskWriteBytes) / secs,
		NetRxBps: float64(c.NetRxBytes-p.NetRxBytes) / secs, NetTxBps: float64(c.NetTxBytes-p.NetTxBytes) / secs,
	}
	if c.AvailableKiB > 0 && c.UnusedKiB <= c.AvailableKiB {
		// The guest's own view: memory it uses (caches included) of what it has.
		x.MemUsedBytes, x.MemAvailableBytes = int64(c.AvailableKiB-c.UnusedKiB)*1024, int64(c.AvailableKiB)*1024
	} else {
		x.MemUsedBytes, x.MemAvailableBytes = int64(min(c.RSSKiB, c.CurrentKiB))*1024, int64(c.CurrentKiB)*1024
	}
	return x, true
}
