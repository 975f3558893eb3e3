// Package backoff spaces out the passes of a loop that keep failing, so an
// outage of the database or a peer meets growing, jittered waits instead of
// a steady hammering, and the log gets one line when the failures start, a
// reminder now and then, and one line when they end.
package backoff

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// DefaultMax is the longest wait between failing passes when none is set.
const DefaultMax = 30 * time.Second

// remindEvery is how often a failure that goes on is logged again.
const remindEvery = time.Minute

// Loop tracks the failures of one loop. Base is the wait after a pass that
// succeeds (and the first step of the backoff), Max the cap. The zero value
// is not usable: Base must be set. A Loop belongs to one goroutine.
type Loop struct {
	Base time.Duration
	Max  time.Duration
	// What names the pass in the log, e.g. "claim work".
	What string
	Log  *slog.Logger

	fails   int
	since   time.Time
	lastLog time.Time
	now     func() time.Time
}

// Failures is the number of passes that have failed in a row.
func (l *Loop) Failures() int { return l.fails }

// Next records how a pass ended and returns how long to wait before the
// next one: Base after a success, after the n-th failure in a row a random
// wait between half and all of Base·2ⁿ⁻¹, never more than Max.
func (l *Loop) Next(ctx context.Context, err error) time.Duration {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	t := now()
	if err == nil {
		if l.fails > 0 && l.Log != nil {
			l.Log.InfoContext(ctx, l.What+" works again", "failures", l.fails, "failing_for", t.Sub(l.since).Round(time.Millisecond))
		}
		l.fails = 0
		return l.Base
	}
	l.fails++
	d := l.step()
	if l.Log != nil {
		switch {
		case l.fails == 1:
			l.since = t
			l.lastLog = t
			l.Log.ErrorContext(ctx, l.What+" failed; retrying with growing waits", "err", err, "retry_in", d.Round(time.Millisecond))
		case t.Sub(l.lastLog) >= remindEvery:
			l.lastLog = t
			l.Log.ErrorContext(ctx, l.What+" still failing", "err", err, "failures", l.fails,
				"failing_for", t.Sub(l.since).Round(time.Second), "retry_in", d.Round(time.Millisecond))
		}
	}
	return d
}

func (l *Loop) step() time.Duration {
	limit := l.Max
	if limit <= 0 {
		limit = DefaultMax
	}
	return Nth(l.Base, limit, l.fails)
}

// Nth is the wait after the n-th failure in a row (n from 1): a random
// duration between half and all of base·2ⁿ⁻¹, capped at limit, so callers
// that failed together do not retry together.
func Nth(base, limit time.Duration, n int) time.Duration {
	d := max(base, time.Millisecond)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d or until ctx ends, and says whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
