package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// meterLoop turns usage records into usage totals every interval, and once
// at start. A pass that fails is logged and made up by the next one:
// metering recomputes from the records. Passes that keep failing wait longer
// each time, up to DefaultMax of package backoff.
func meterLoop(ctx context.Context, st *store.Store, every time.Duration, log *slog.Logger) error {
	passes := &backoff.Loop{Base: every, Max: max(every, backoff.DefaultMax), What: "metering pass", Log: log}
	for {
		start := time.Now()
		reps, err := st.MeterNow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := passes.Next(ctx, err)
		if err == nil {
			for _, r := range reps {
				log.Info("usage metered", "month", r.Month, "until", r.Until.Format(time.RFC3339), "resources", r.Resources,
					"totals", r.Rows, "took", time.Since(start).Round(time.Millisecond))
			}
			issueMonthEnd(ctx, st, log)
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// issueMonthEnd issues the invoices of the month that just ended, on the
// first two days of a month; tenants already invoiced are skipped, so every
// provisioner may try.
func issueMonthEnd(ctx context.Context, st *store.Store, log *slog.Logger) {
	now := time.Now().UTC()
	if now.Day() > 2 {
		return
	}
	month := store.MonthOf(now.AddDate(0, 0, -now.Day()))
	rep, err := st.IssueInvoices(ctx, store.Actor{Email: "system"}, month, "")
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error("month-end invoices not issued; the next pass tries again", "month", month, "err", err)
	case err == nil && rep.Issued > 0:
		log.Info("month-end invoices issued", "month", month, "invoices", rep.Issued, "total", rep.Total.String(), "empty", rep.Empty)
	}
}
