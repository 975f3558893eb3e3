package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Retention of VM samples: raw samples cover the hour and day views, ten
// minute rollups the week view.
const (
	// RollupStep is the span of one rollup row.
	RollupStep = 10 * time.Minute
	// RawRetention is how long raw samples are kept.
	RawRetention = 25 * time.Hour
	// RollupRetention is how long rollups are kept.
	RollupRetention = 8 * 24 * time.Hour
	// pruneBatch bounds one DELETE of old samples, so pruning never holds
	// the write lock for long.
	pruneBatch = 2000
	// pruneBatches bounds the batches of one PruneVMMetrics; the next pass
	// goes on where it stopped.
	pruneBatches = 20
)

// VMSample is one measurement of a VM: a raw sample, or the mean of the
// samples of a rollup step.
type VMSample struct {
	VMID string
	At   time.Time
	// CPUPercent is the share of the VM's vCPUs in use: 100 is all of them.
	CPUPercent float64
	// MemUsedBytes and MemAvailableBytes are what the memory balloon
	// reports: the guest's own view when it sends statistics, otherwise
	// the host memory the VM holds and its current allocation.
	MemUsedBytes      int64
	MemAvailableBytes int64
	DiskReadBps       float64
	DiskWriteBps      float64
	NetRxBps          float64
	NetTxBps          float64
}

type vmMetric struct {
	VMID              string    `gorm:"column:vm_id;primaryKey"`
	Resolution        int64     `gorm:"column:resolution;primaryKey"`
	At                time.Time `gorm:"column:at;primaryKey"`
	CPUPercent        float64   `gorm:"column:cpu_percent"`
	MemUsedBytes      int64     `gorm:"column:mem_used_bytes"`
	MemAvailableBytes int64     `gorm:"column:mem_available_bytes"`
	DiskReadBps       float64   `gorm:"column:disk_read_bps"`
	DiskWriteBps      float64   `gorm:"column:disk_write_bps"`
	NetRxBps          float64   `gorm:"column:net_rx_bps"`
	NetTxBps          float64   `gorm:"column:net_tx_bps"`
}

func (vmMetric) TableName() string { return "vm_metrics" }

func (m vmMetric) sample() VMSample {
	return VMSample{VMID: m.VMID, At: m.At.UTC(), CPUPercent: m.CPUPercent, MemUsedBytes: m.MemUsedBytes,
		MemAvailableBytes: m.MemAvailableBytes, DiskReadBps: m.DiskReadBps, DiskWriteBps: m.DiskWriteBps,
		NetRxBps: m.NetRxBps, NetTxBps: m.NetTxBps}
}

func metricOf(s VMSample, resolution int64, at time.Time) vmMetric {
	return vmMetric{VMID: s.VMID, Resolution: resolution, At: at, CPUPercent: s.CPUPercent, MemUsedBytes: s.MemUsedBytes,
		MemAvailableBytes: s.MemAvailableBytes, DiskReadBps: s.DiskReadBps, DiskWriteBps: s.DiskWriteBps,
		NetRxBps: s.NetRxBps, NetTxBps: s.NetTxBps}
}

// RecordVMSamples stores raw samples in one transaction. Samples of VMs
// that do not exist or are deleted are dropped (a domain may outlive its
// VM row for a moment); it returns how many were stored. A second sample
// of a VM at the same second is ignored.
func (s *Store) RecordVMSamples(ctx context.Context, samples []VMSample) (int, error) {
	if len(samples) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(samples))
	for _, x := range samples {
		ids = append(ids, x.VMID)
	}
	stored := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var live []string
		if err := tx.Table("vms").Where("id IN ? AND deleted_at IS NULL", ids).Pluck("id", &live).Error; err != nil {
			return fmt.Errorf("load sampled vms: %w", err)
		}
		known := make(map[string]bool, len(live))
		for _, id := range live {
			known[id] = true
		}
		rows := make([]vmMetric, 0, len(samples))
		for _, x := range samples {
			if known[x.VMID] {
				rows = append(rows, metricOf(x, 0, x.At.UTC().Truncate(time.Second)))
			}
		}
		if len(rows) == 0 {
			return nil
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows)
		if res.Error != nil {
			return fmt.Errorf("store vm samples: %w", res.Error)
		}
		stored = int(res.RowsAffected)
		return nil
	})
	return stored, err
}

// RollupVMMetrics averages the raw samples of every ten-minute step that
// ended by now and has no rollup yet, in one transaction, and returns the
// number of rollups made. Steps older than the raw retention are not
// looked at: their samples are gone.
func (s *Store) RollupVMMetrics(ctx context.Context, now time.Time) (int, error) {
	end := now.UTC().Truncate(RollupStep)
	made := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		from := end.Add(-RawRetention).Truncate(RollupStep)
		var last []vmMetric
		if err := tx.Where("resolution = ?", int64(RollupStep/time.Second)).Order("at DESC").Limit(1).Find(&last).Error; err != nil {
			return fmt.Errorf("load last rollup: %w", err)
		}
		if len(last) == 1 && !last[0].At.Before(from) {
			from = last[0].At.UTC().Add(RollupStep)
		}
		if !from.Before(end) {
			return nil
		}
		var raw []vmMetric
		if err := tx.Where("resolution = 0 AND at >= ? AND at < ?", from, end).Order("vm_id, at").Find(&raw).Error; err != nil {
			return fmt.Errorf("load raw samples: %w", err)
		}
		type key struct {
			vm string
			at time.Time
		}
		sums := map[key]*vmMetric{}
		counts := map[key]int{}
		var order []key
		for _, r := range raw {
			k := key{r.VMID, r.At.UTC().Truncate(RollupStep)}
			a, ok := sums[k]
			if !ok {
				a = &vmMetric{VMID: r.VMID, Resolution: int64(RollupStep / time.Second), At: k.at}
				sums[k] = a
				order = append(order, k)
			}
			counts[k]++
			a.CPUPercent += r.CPUPercent
			a.MemUsedBytes += r.MemUsedBytes
			a.MemAvailableBytes += r.MemAvailableBytes
			a.DiskReadBps += r.DiskReadBps
			a.DiskWriteBps += r.DiskWriteBps
			a.NetRxBps += r.NetRxBps
			a.NetTxBps += r.NetTxBps
		}
		if len(order) == 0 {
			return nil
		}
		rows := make([]vmMetric, 0, len(order))
		for _, k := range order {
			a, n := sums[k], counts[k]
			f := float64(n)
			a.CPUPercent /= f
			a.MemUsedBytes /= int64(n)
			a.MemAvailableBytes /= int64(n)
			a.DiskReadBps /= f
			a.DiskWriteBps /= f
			a.NetRxBps /= f
			a.NetTxBps /= f
			rows = append(rows, *a)
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&rows, 200)
		if res.Error != nil {
			return fmt.Errorf("store rollups: %w", res.Error)
		}
		made = int(res.RowsAffected)
		return nil
	})
	return made, err
}

// PruneVMMetrics deletes raw samples older than RawRetention, rollups older
// than RollupRetention and every sample of a deleted VM, in batches; it
// returns the number of rows deleted. A pass stops after a bounded number
// of batches and the next one goes on.
func (s *Store) PruneVMMetrics(ctx context.Context, now time.Time) (int64, error) {
	now = now.UTC()
	db := s.db.WithContext(ctx)
	conds := []struct {
		where string
		args  []any
	}{
		{"resolution = 0 AND at < ?", []any{now.Add(-RawRetention)}},
		{"resolution > 0 AND at < ?", []any{now.Add(-RollupRetention)}},
		{"vm_id IN (SELECT id FROM vms WHERE deleted_at IS NOT NULL)", nil},
	}
	var total int64
	batches := 0
	for _, c := range conds {
		for batches < pruneBatches {
			batches++
			sub := db.Model(&vmMetric{}).Select("vm_id, resolution, at").Where(c.where, c.args...).Limit(pruneBatch)
			res := db.Where("(vm_id, resolution, at) IN (?)", sub).Delete(&vmMetric{})
			if res.Error != nil {
				return total, fmt.Errorf("prune vm samples: %w", res.Error)
			}
			total += res.RowsAffected
			if res.RowsAffected < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

// MetricsRange is a time span the VM graphs show.
type MetricsRange string

// The spans of the VM graphs.
const (
	RangeHour MetricsRange = "hour"
	RangeDay  MetricsRange = "day"
	RangeWeek MetricsRange = "week"
)

// ParseMetricsRange reads a span; empty means the hour.
func ParseMetricsRange(v string) (MetricsRange, error) {
	switch r := MetricsRange(v); r {
	case "":
		return RangeHour, nil
	case RangeHour, RangeDay, RangeWeek:
		return r, nil
	}
	return "", E(ErrInvalid, "range", "range must be hour, day or week")
}

// Span is how far back the range reaches.
func (r MetricsRange) Span() time.Duration {
	switch r {
	case RangeDay:
		return 24 * time.Hour
	case RangeWeek:
		return 7 * 24 * time.Hour
	}
	return time.Hour
}

// VMMetrics is the series of one VM over a range, oldest first.
type VMMetrics struct {
	VMID    string
	VMName  string
	VCPUs   int64
	Range   MetricsRange
	From    time.Time
	To      time.Time
	Step    time.Duration // what one sample stands for: 0 raw
	Samples []VMSample
}

// GetVMMetrics returns the samples of one of the tenant's VMs over the
// range ending at now: raw samples for the hour and the day, rollups for
// the week. Another tenant's VM is not found.
func (s *Store) GetVMMetrics(ctx context.Context, tenantID, vmID string, r MetricsRange, now time.Time) (VMMetrics, error) {
	if _, err := ParseMetricsRange(string(r)); err != nil {
		return VMMetrics{}, err
	}
	db := s.db.WithContext(ctx)
	vm, err := tenantVM(db, tenantID, vmID, "")
	if err != nil {
		return VMMetrics{}, err
	}
	now = now.UTC()
	out := VMMetrics{VMID: vm.ID, VMName: vm.Name, VCPUs: vm.VCPUs, Range: r, From: now.Add(-r.Span()), To: now, Samples: []VMSample{}}
	resolution := int64(0)
	if r == RangeWeek {
		resolution, out.Step = int64(RollupStep/time.Second), RollupStep
	}
	var rows []vmMetric
	if err := db.Where("vm_id = ? AND resolution = ? AND at >= ? AND at <= ?", vm.ID, resolution, out.From, now).
		Order("at").Find(&rows).Error; err != nil {
		return out, fmt.Errorf("load vm samples: %w", err)
	}
	for _, m := range rows {
		out.Samples = append(out.Samples, m.sample())
	}
	return out, nil
}
