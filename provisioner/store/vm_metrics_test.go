package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func sampleAt(vmID string, at time.Time, cpu float64) store.VMSample {
	return store.VMSample{VMID: vmID, At: at, CPUPercent: cpu, MemUsedBytes: 100 << 20, MemAvailableBytes: 512 << 20,
		DiskReadBps: cpu * 10, DiskWriteBps: 1, NetRxBps: 2, NetTxBps: 3}
}

func cpus(m store.VMMetrics) []float64 {
	out := []float64{}
	for _, x := range m.Samples {
		out = append(out, x.CPUPercent)
	}
	return out
}

// TestVMMetrics stores samples, reads them back per range, rolls them up
// into ten-minute steps for the week, prunes by age and after a VM's
// deletion, and keeps other tenants out.
func TestVMMetrics(t *testing.T) {
	eachDBRaw(t, func(t *testing.T, s *store.Store, raw *gorm.DB) {
		ctx := context.Background()
		f := setup(t, s, "graphs")
		rival := setup(t, s, "rivalgraphs")
		addLAN(t, s)
		web := runningVM(t, s, f, "web")
		db := runningVM(t, s, f, "db")
		now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

		// Raw samples every minute for 26 hours for web; a few for db; one
		// for a VM that does not exist.
		var batch []store.VMSample
		for i := 26 * 60; i >= 1; i-- {
			batch = append(batch, sampleAt(web.ID, now.Add(-time.Duration(i)*time.Minute), float64(i%60)))
		}
		batch = append(batch, sampleAt(db.ID, now.Add(-30*time.Second), 99), sampleAt("no-such-vm", now, 5))
		n, err := s.RecordVMSamples(ctx, batch)
		if err != nil || n != 26*60+1 {
			t.Fatalf("RecordVMSamples = %d, %v; want %d", n, err, 26*60+1)
		}
		// The same second again is ignored.
		if n, err := s.RecordVMSamples(ctx, []store.VMSample{sampleAt(db.ID, now.Add(-30*time.Second), 1)}); err != nil || n != 0 {
			t.Errorf("duplicate sample: %d, %v", n, err)
		}

		hour, err := s.GetVMMetrics(ctx, f.tenant.ID, web.ID, store.RangeHour, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(hour.Samples) != 60 || hour.VMName != "web" || hour.Step != 0 || !hour.From.Equal(now.Add(-time.Hour)) {
			t.Fatalf("hour: %d samples, %+v", len(hour.Samples), hour)
		}
		first := hour.Samples[0]
		want := sampleAt(web.ID, now.Add(-60*time.Minute), 0)
		if diff := cmp.Diff(want, first); diff != "" {
			t.Errorf("first sample of the hour (-want +got):\n%s", diff)
		}
		day, err := s.GetVMMetrics(ctx, f.tenant.ID, web.ID, store.RangeDay, now)
		if err != nil || len(day.Samples) != 24*60 {
			t.Fatalf("day: %d samples, %v", len(day.Samples), err)
		}
		if got, _ := s.GetVMMetrics(ctx, f.tenant.ID, db.ID, store.RangeHour, now); !cmp.Equal(cpus(got), []float64{99}) {
			t.Errorf("db's hour: %v", cpus(got))
		}

		// Rollups: the raw retention is 25 hours, so 150 ten-minute steps.
		made, err := s.RollupVMMetrics(ctx, now)
		if err != nil || made != 151 {
			t.Fatalf("RollupVMMetrics = %d, %v; want 151 (150 steps of web, one of db)", made, err)
		}
		if again, err := s.RollupVMMetrics(ctx, now.Add(5*time.Minute)); err != nil || again != 0 {
			t.Errorf("second rollup in the same step: %d, %v", again, err)
		}
		week, err := s.GetVMMetrics(ctx, f.tenant.ID, web.ID, store.RangeWeek, now)
		if err != nil || len(week.Samples) != 150 || week.Step != store.RollupStep {
			t.Fatalf("week: %d samples step %s, %v", len(week.Samples), week.Step, err)
		}
		last := week.Samples[len(week.Samples)-1]
		// The step 11:50–12:00 holds minutes 10..1 before noon: CPU 10..1.
		if !last.At.Equal(now.Add(-10*time.Minute)) || last.CPUPercent != 5.5 || last.DiskReadBps != 55 || last.MemAvailableBytes != 512<<20 {
			t.Errorf("last rollup: %+v", last)
		}

		// Retention: an hour later the raw samples older than 25 h go; the
		// rollups stay until 8 days.
		pruned, err := s.PruneVMMetrics(ctx, now.Add(time.Hour))
		if err != nil || pruned != 120 {
			t.Errorf("PruneVMMetrics = %d, %v; want 120 raw samples", pruned, err)
		}
		pruned, err = s.PruneVMMetrics(ctx, now.Add(store.RollupRetention+time.Hour))
		if err != nil || pruned != 26*60-120+1+151 {
			t.Errorf("PruneVMMetrics a week later = %d, %v; want everything", pruned, err)
		}

		// Another tenant, bad ranges, deleted VMs.
		if _, err := s.GetVMMetrics(ctx, rival.tenant.ID, web.ID, store.RangeHour, now); kindOf(err) != store.ErrNotFound {
			t.Errorf("another tenant reads: %v", err)
		}
		if _, err := s.GetVMMetrics(ctx, f.tenant.ID, web.ID, "month", now); kindOf(err) != store.ErrInvalid {
			t.Errorf("range month: %v", err)
		}
		if _, err := store.ParseMetricsRange("year"); kindOf(err) != store.ErrInvalid {
			t.Errorf("ParseMetricsRange(year): %v", err)
		}
		if _, err := s.RecordVMSamples(ctx, []store.VMSample{sampleAt(web.ID, now, 1), sampleAt(db.ID, now, 2)}); err != nil {
			t.Fatal(err)
		}
		if err := raw.Exec(`UPDATE vms SET deleted_at = ? WHERE id = ?`, now, web.ID).Error; err != nil {
			t.Fatal(err)
		}
		if n, err := s.RecordVMSamples(ctx, []store.VMSample{sampleAt(web.ID, now.Add(time.Minute), 1)}); err != nil || n != 0 {
			t.Errorf("sample of a deleted vm stored: %d, %v", n, err)
		}
		if pruned, err := s.PruneVMMetrics(ctx, now); err != nil || pruned != 1 {
			t.Errorf("prune after deletion = %d, %v; want web's one sample", pruned, err)
		}
		if got, _ := s.GetVMMetrics(ctx, f.tenant.ID, db.ID, store.RangeHour, now); len(got.Samples) != 1 {
			t.Errorf("db's samples after web's deletion: %v", cpus(got))
		}
	})
}
