package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// meterLoop turns usage records into usage totals every interval, and once
// at start. A pass that fails is logged and made up by the next one:
// metering recomputes from the records.
func meterLoop(ctx context.Context, st *store.Store, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		reps, err := st.MeterNow(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("metering pass failed; the next one makes it up", "err", err)
		case err == nil:
			for _, r := range reps {
				log.Info("usage metered", "month", r.Month, "until", r.Until.Format(time.RFC3339), "resources", r.Resources,
					"totals", r.Rows, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
