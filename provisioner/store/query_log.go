package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// queryLogger is GORM's slog query logger with two differences. Failures
// Unavailable recognises are not logged: they reach the caller, which
// reports them once (the HTTP edge per request, a background loop per
// pass), so the statement need not be logged again for every query of an
// outage. And a statement is rendered only when it is going to be logged:
// GORM's logger renders every statement's SQL (regular expressions over
// the text) before it decides, which cost more than a placement's guarded
// UPDATE itself.
//
// It also passes ParamsFilter on, which an embedded logger.Interface
// hides: without it ParameterizedQueries is ignored and a logged
// statement carries its arguments (password hashes, tokens) in the clear.
type queryLogger struct {
	logger.Interface
	log *slog.Logger
	cfg logger.Config
}

func newQueryLogger(log *slog.Logger, cfg logger.Config) queryLogger {
	return queryLogger{Interface: logger.NewSlogLogger(log, cfg), log: log, cfg: cfg}
}

func (q queryLogger) LogMode(level logger.LogLevel) logger.Interface {
	q.Interface = q.Interface.LogMode(level)
	q.cfg.LogLevel = level
	return q
}

// Trace hands a statement to GORM's logger when that would print it, by
// the same rules: failures at error level, slow statements at warning
// level, every statement at info level.
func (q queryLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if q.cfg.LogLevel <= logger.Silent || Unavailable(err) {
		return
	}
	var level slog.Level
	switch {
	case err != nil && (!q.cfg.IgnoreRecordNotFoundError || !errors.Is(err, gorm.ErrRecordNotFound)):
		level = slog.LevelError
	case q.cfg.SlowThreshold != 0 && time.Since(begin) > q.cfg.SlowThreshold:
		level = slog.LevelWarn
	case q.cfg.LogLevel >= logger.Info:
		level = slog.LevelInfo
	default:
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !q.log.Enabled(ctx, level) {
		return
	}
	q.Interface.Trace(ctx, begin, fc, err)
}

// ParamsFilter leaves the arguments out of logged statements when the
// configuration asks for parameterized queries.
func (q queryLogger) ParamsFilter(ctx context.Context, sql string, params ...any) (string, []any) {
	if f, ok := q.Interface.(gorm.ParamsFilter); ok {
		return f.ParamsFilter(ctx, sql, params...)
	}
	return sql, params
}
