package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"gorm.io/gorm"
)

// Months are calendar months in UTC, named "2006-01".
const monthLayout = "2006-01"

// MonthOf names the month t falls in.
func MonthOf(t time.Time) string { return t.UTC().Format(monthLayout) }

// MonthBounds is the first instant of the month and of the next one.
func MonthBounds(month string) (start, end time.Time, err error) {
	start, err = time.Parse(monthLayout, month)
	if err != nil {
		return time.Time{}, time.Time{}, E(ErrInvalid, "month", fmt.Sprintf("%q is not a month like 2026-12", month))
	}
	return start, start.AddDate(0, 1, 0), nil
}

// MeterReport says what one metering pass did.
type MeterReport struct {
	Month     string
	Until     time.Time
	Resources int // resources with usage in the month
	Rows      int // usage totals written
}

// meterBatch is how many tenants' totals are replaced per transaction.
const meterBatch = 500

// MeterMonth recomputes, from the usage records, every resource's billed
// hours and amount in month up to until (clipped to the month), and
// replaces the month's usage totals with them. A resource bills each clock
// hour in which it ran, or existed stopped when its price bills stopped
// VMs, for any part of the hour; each hour takes the price in effect at its
// start. Running it again gives the same totals, so a pass cut short (a
// crash, kill -9) is simply run again: no hour is lost or counted twice.
func (s *Store) MeterMonth(ctx context.Context, month string, until time.Time) (MeterReport, error) {
	start, end, err := MonthBounds(month)
	if err != nil {
		return MeterReport{}, err
	}
	until = until.UTC()
	if until.After(end) {
		until = end
	}
	rep := MeterReport{Month: month, Until: until}
	if !until.After(start) {
		return rep, nil
	}
	db := s.db.WithContext(ctx)
	var prices []Price
	if err := db.Order("item, effective_from").Find(&prices).Error; err != nil {
		return rep, fmt.Errorf("load prices: %w", err)
	}
	book := newPriceBook(prices)
	var recs []UsageRecord
	if err := db.Where("started_at < ? AND (ended_at IS NULL OR ended_at > ?)", until, start).
		Order("tenant_id, resource_kind, resource_id, started_at").Find(&recs).Error; err != nil {
		return rep, fmt.Errorf("load usage records: %w", err)
	}
	hours := int((until.Sub(start) + time.Hour - 1) / time.Hour)
	byTenant := map[string][]UsageTotal{}
	var tenants []string
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].ResourceKind == recs[i].ResourceKind && recs[j].ResourceID == recs[i].ResourceID {
			j++
		}
		rows := meterResource(recs[i:j], book, month, start, until, hours)
		rep.Resources++
		t := recs[i].TenantID
		if _, ok := byTenant[t]; !ok {
			tenants = append(tenants, t)
		}
		byTenant[t] = append(byTenant[t], rows...)
		i = j
	}
	sort.Strings(tenants)
	for b := 0; b < len(tenants); b += meterBatch {
		batch := tenants[b:min(b+meterBatch, len(tenants))]
		var rows []UsageTotal
		for _, t := range batch {
			rows = append(rows, byTenant[t]...)
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			// Passes of several provisioners take turns per batch: the
			// settings row is their lock.
			if err := tx.Exec("UPDATE billing_settings SET id = id WHERE id = 1").Error; err != nil {
				return fmt.Errorf("lock billing: %w", err)
			}
			if err := tx.Where("month = ? AND tenant_id IN ?", month, batch).Delete(&UsageTotal{}).Error; err != nil {
				return fmt.Errorf("clear usage totals: %w", err)
			}
			if len(rows) == 0 {
				return nil
			}
			return tx.CreateInBatches(rows, 500).Error
		})
		if err != nil {
			return rep, fmt.Errorf("write usage totals: %w", err)
		}
		rep.Rows += len(rows)
	}
	return rep, nil
}

// meterResource turns one resource's records into its totals per price.
func meterResource(recs []UsageRecord, book priceBook, month string, start, until time.Time, hours int) []UsageTotal {
	const running, stopped = 1, 2
	marks := make([]uint8, hours)
	// A VM changes plan when resized: each hour bills its own item, kept
	// as an index into names (few, and no pointers for the collector).
	items := make([]int32, hours)
	var names []string
	units := make([]int64, hours) // a snapshot's GiB; 1 for anything else
	for _, r := range recs {
		item := int32(slices.Index(names, r.Item))
		if item < 0 {
			item = int32(len(names))
			names = append(names, r.Item)
		}
		from, to := r.StartedAt, until
		if r.EndedAt != nil && r.EndedAt.Before(to) {
			to = *r.EndedAt
		}
		if from.Before(start) {
			from = start
		}
		if !to.After(from) {
			continue
		}
		flag := uint8(running) // a port forward bills like a running VM
		if r.Class == UsageStopped {
			flag = stopped
		}
		first := int(from.Sub(start) / time.Hour)
		last := int((to.Sub(start) - time.Microsecond) / time.Hour)
		for h := first; h <= last && h < hours; h++ {
			marks[h] |= flag
			items[h] = item
			units[h] = max(units[h], r.Units, 1)
		}
	}
	last := recs[len(recs)-1]
	// line is one total being summed: its price and how many unit-hours
	// it is the amount of.
	type line struct {
		t         *UsageTotal
		p         Price
		priced    bool
		unitHours int64
	}
	byPrice := map[string]*line{}
	var order []*line
	// The price found for an hour holds until its item changes or the next
	// version begins; hours run forward, so one lookup serves a stretch.
	var (
		p       Price
		priced  bool
		pItem   int32
		pUntilH int // the first hour of the next version; hours: none
		pLooked bool
		cur     *line
	)
	for h, m := range marks {
		if m == 0 {
			continue
		}
		if !pLooked || items[h] != pItem || h >= pUntilH {
			at := start.Add(time.Duration(h) * time.Hour)
			var next time.Time // zero: no later version
			p, priced, next = book.span(names[items[h]], at)
			pItem, pLooked, cur, pUntilH = items[h], true, nil, hours
			if !next.IsZero() {
				// The first hour that does not start before the next version.
				pUntilH = int((next.Sub(start) + time.Hour - 1) / time.Hour)
			}
		}
		if m&running == 0 && priced && !p.BillStopped {
			continue
		}
		if cur == nil {
			key := names[items[h]] + "/" + p.ID
			cur = byPrice[key]
			if cur == nil {
				cur = &line{t: &UsageTotal{Month: month, ResourceKind: last.ResourceKind, ResourceID: last.ResourceID, PriceID: p.ID,
					TenantID: last.TenantID, ResourceName: last.ResourceName, Item: names[items[h]], MeteredUntil: until}}
				byPrice[key] = cur
				order = append(order, cur)
			}
			// The amount is of the price in effect at the line's latest
			// hour, as it always was: the last hour metered sets it.
			cur.p, cur.priced = p, priced
		}
		cur.t.Hours++
		// A line shows one size; should a resource's units change within a
		// line, it shows the largest and bills each hour at its own.
		cur.t.Units = max(cur.t.Units, units[h])
		cur.unitHours += units[h]
	}
	out := make([]UsageTotal, 0, len(order))
	for _, l := range order {
		// Summed once at the end rather than every hour: LineAmount of the
		// line's unit-hours at its price, capped at the monthly price.
		if l.priced {
			l.t.AmountMinor = LineAmount(l.unitHours, l.p.HourlyMicros, l.p.MonthlyCapMinor)
		}
		out = append(out, *l.t)
	}
	return out
}

// UsageTotals lists a tenant's totals for a month, by resource.
func (s *Store) UsageTotals(ctx context.Context, tenantID, month string) ([]UsageTotal, error) {
	if _, _, err := MonthBounds(month); err != nil {
		return nil, err
	}
	var out []UsageTotal
	if err := s.db.WithContext(ctx).Where("tenant_id = ? AND month = ?", tenantID, month).
		Order("resource_kind DESC, resource_name, resource_id, price_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("load usage totals: %w", err)
	}
	return out, nil
}

// UsageRecords lists a tenant's usage records that overlap a month.
func (s *Store) UsageRecords(ctx context.Context, tenantID, month string) ([]UsageRecord, error) {
	start, end, err := MonthBounds(month)
	if err != nil {
		return nil, err
	}
	var out []UsageRecord
	if err := s.db.WithContext(ctx).Where("tenant_id = ? AND started_at < ? AND (ended_at IS NULL OR ended_at > ?)", tenantID, end, start).
		Order("started_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("load usage records: %w", err)
	}
	return out, nil
}

// MeterNow meters the current month up to now and, during the first two
// days of a month, the month before to its end, so that a pass missed at
// the turn of the month is made up before invoices are issued.
func (s *Store) MeterNow(ctx context.Context) ([]MeterReport, error) {
	ts := s.now()
	var out []MeterReport
	if ts.Day() <= 2 {
		rep, err := s.MeterMonth(ctx, MonthOf(ts.AddDate(0, -1, 0)), ts)
		if err != nil {
			return out, err
		}
		out = append(out, rep)
	}
	rep, err := s.MeterMonth(ctx, MonthOf(ts), ts)
	if err != nil {
		return out, err
	}
	return append(out, rep), nil
}
