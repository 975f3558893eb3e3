package backoff

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestWaitsGrowToTheCapAndResetOnSuccess(t *testing.T) {
	l := &Loop{Base: time.Second, Max: 10 * time.Second}
	ctx := context.Background()
	fail := errors.New("connection refused")
	// The n-th failure waits within [cap/2, cap] where cap = min(Base·2ⁿ⁻¹, Max).
	caps := []time.Duration{1, 2, 4, 8, 10, 10, 10}
	for i, c := range caps {
		c *= time.Second
		for range 50 {
			// Each draw is checked on a fresh copy at the same failure count.
			probe := *l
			d := probe.Next(ctx, fail)
			if d < c/2 || d > c {
				t.Fatalf("failure %d: wait %v outside [%v, %v]", i+1, d, c/2, c)
			}
		}
		l.Next(ctx, fail)
		if l.Failures() != i+1 {
			t.Fatalf("failures = %d, want %d", l.Failures(), i+1)
		}
	}
	if d := l.Next(ctx, nil); d != time.Second {
		t.Fatalf("wait after a success = %v, want Base", d)
	}
	if l.Failures() != 0 {
		t.Fatalf("failures after a success = %d", l.Failures())
	}
	if d := l.Next(ctx, fail); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("first failure after recovery waits %v, want within Base", d)
	}
}

func TestDefaultCap(t *testing.T) {
	l := &Loop{Base: time.Second}
	var d time.Duration
	for range 20 {
		d = l.Next(context.Background(), errors.New("down"))
	}
	if d > DefaultMax || d < DefaultMax/2 {
		t.Fatalf("wait after 20 failures = %v, want within DefaultMax", d)
	}
}

func TestLogsStartRemindersAndEnd(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &Loop{Base: time.Second, What: "claim work", Log: slog.New(slog.NewTextHandler(&buf, nil)),
		now: func() time.Time { return now }}
	ctx := context.Background()
	fail := errors.New("dial tcp 127.0.0.1:5432: connection refused")
	for range 10 { // ten failures within a minute: one line
		l.Next(ctx, fail)
		now = now.Add(5 * time.Second)
	}
	now = now.Add(time.Minute)
	l.Next(ctx, fail) // a reminder
	l.Next(ctx, fail) // not yet another
	l.Next(ctx, nil)  // recovery
	l.Next(ctx, nil)  // nothing to say
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("log lines = %d, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"claim work failed; retrying with growing waits", "claim work still failing", "claim work works again"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[1], "failures=11") || !strings.Contains(lines[2], "failures=12") {
		t.Errorf("failure counts missing:\n%s", buf.String())
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on a cancelled context reported a live one")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep reported a cancelled context")
	}
}
