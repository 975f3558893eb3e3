package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// BenchmarkMonthEnd measures the month-end run: meter a whole month for
// 10,000 tenants with 10 VMs each (one in five stopped half the month),
// then issue their invoices. Each iteration issues every invoice anew.
func BenchmarkMonthEnd(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		b.Run(db, func(b *testing.B) {
			ctx := context.Background()
			url := filepath.Join(b.TempDir(), "bench.db")
			if db == "postgres" {
				url = pgtest.DSN(b)
			}
			s, err := Open(ctx, url, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			if _, err := s.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			seedMonth(b, s, 10000, 10)
			s.SetClock(func() time.Time { return time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC) })
			for b.Loop() {
				b.StopTimer()
				for _, q := range []string{"DELETE FROM invoice_lines", "DELETE FROM invoices", "DELETE FROM audit_log WHERE action = 'invoice.issue'"} {
					if err := s.db.Exec(q).Error; err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				rep, err := s.IssueInvoices(ctx, Actor{Email: "bench"}, "2026-11", "")
				if err != nil {
					b.Fatal(err)
				}
				if rep.Issued != 10000 {
					b.Fatalf("issued %d invoices, want 10000", rep.Issued)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		})
	}
}

func seedMonth(b *testing.B, s *Store, tenants, vmsEach int) {
	b.Helper()
	ts := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var plan Plan
	if err := s.db.Where("name = ?", "nano").Take(&plan).Error; err != nil {
		b.Fatal(err)
	}
	if err := s.db.Create(&Price{ID: newID(), Item: PlanItem(plan.ID), HourlyMicros: 6000, MonthlyCapMinor: 400, BillStopped: true,
		EffectiveFrom: ts, CreatedAt: ts}).Error; err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var tens []Tenant
	var recs []UsageRecord
	for i := range tenants {
		t := Tenant{ID: newID(), Name: fmt.Sprintf("Tenant %05d", i), Slug: fmt.Sprintf("t%05d", i), Status: TenantActive, CreatedAt: ts, UpdatedAt: ts}
		tens = append(tens, t)
		for v := range vmsEach {
			id := newID()
			on := start.Add(time.Duration((i+v)%200) * time.Hour)
			r := UsageRecord{ID: newID(), TenantID: t.ID, ResourceKind: ResourceVM, ResourceID: id, ResourceName: fmt.Sprintf("vm-%d", v),
				Item: PlanItem(plan.ID), Class: UsageRunning, StartedAt: on}
			if v%5 == 0 {
				mid := start.Add(15 * 24 * time.Hour)
				r.EndedAt = &mid
				recs = append(recs, r, UsageRecord{ID: newID(), TenantID: t.ID, ResourceKind: ResourceVM, ResourceID: id,
					ResourceName: r.ResourceName, Item: r.Item, Class: UsageStopped, StartedAt: mid})
				continue
			}
			recs = append(recs, r)
		}
	}
	if err := s.db.CreateInBatches(tens, 500).Error; err != nil {
		b.Fatal(err)
	}
	if err := s.db.CreateInBatches(recs, 1000).Error; err != nil {
		b.Fatal(err)
	}
}
