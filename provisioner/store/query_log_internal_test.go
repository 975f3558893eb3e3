package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// syncBuffer is a log destination safe for the store's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestFailedStatementsAreLoggedWithoutArguments checks a statement that
// fails is logged with its SQL but not its arguments, which may be
// password hashes or tokens.
func TestFailedStatementsAreLoggedWithoutArguments(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := filepath.Join(t.TempDir(), "fibrix.db")
			if db == "postgres" {
				url = pgtest.DSN(t)
			}
			var out syncBuffer
			s, err := Open(ctx, url, slog.New(slog.NewTextHandler(&out, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			const secret = "secret-hash-that-must-not-be-logged"
			if err := s.db.WithContext(ctx).Exec(`UPDATE users SET password_hash = ? WHERE no_such_column = 1`, secret).Error; err == nil {
				t.Fatal("a statement on a missing column: want an error")
			}
			logged := out.String()
			if strings.Contains(logged, secret) {
				t.Errorf("the log holds an argument of a statement:\n%s", logged)
			}
			if !strings.Contains(logged, "no_such_column") {
				t.Errorf("the failed statement was not logged:\n%s", logged)
			}
		})
	}
}

// TestQueryLoggerRendersOnlyWhatItLogs checks a statement's SQL is built
// only when it is going to be logged.
func TestQueryLoggerRendersOnlyWhatItLogs(t *testing.T) {
	cfg := logger.Config{SlowThreshold: time.Second, IgnoreRecordNotFoundError: true, ParameterizedQueries: true, LogLevel: logger.Warn}
	enabled := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name   string
		log    *slog.Logger
		level  logger.LogLevel
		took   time.Duration
		err    error
		render bool
	}{
		{name: "fast and fine", log: enabled, level: logger.Warn, took: time.Millisecond},
		{name: "not found", log: enabled, level: logger.Warn, err: gorm.ErrRecordNotFound},
		{name: "database gone", log: enabled, level: logger.Warn, err: ErrUnavailable},
		{name: "failed", log: enabled, level: logger.Warn, err: errors.New("boom"), render: true},
		{name: "slow", log: enabled, level: logger.Warn, took: 2 * time.Second, render: true},
		{name: "info level", log: enabled, level: logger.Info, took: time.Millisecond, render: true},
		{name: "silent", log: enabled, level: logger.Silent, err: errors.New("boom")},
		{name: "handler off", log: slog.New(slog.DiscardHandler), level: logger.Warn, err: errors.New("boom")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueryLogger(tc.log, cfg).LogMode(tc.level)
			rendered := false
			q.Trace(context.Background(), time.Now().Add(-tc.took), func() (string, int64) {
				rendered = true
				return "SELECT 1", 1
			}, tc.err)
			if rendered != tc.render {
				t.Errorf("rendered = %v; want %v", rendered, tc.render)
			}
		})
	}
	sql, vars := newQueryLogger(enabled, cfg).ParamsFilter(context.Background(), "SELECT ?", "secret")
	if sql != "SELECT ?" || len(vars) != 0 {
		t.Errorf("ParamsFilter = %q, %v; want the arguments left out", sql, vars)
	}
}
