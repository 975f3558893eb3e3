// Package store is the shared database contract between the portal and the
// provisioner: tenants, users, SSH keys, quotas, plans, images, VMs, their
// operations and the audit log. Every multi-row change runs in one
// transaction and records its audit entry in that same transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fibrixcloud/fibrix/migrations"
	"github.com/fibrixcloud/fibrix/provisioner/capacity"
)

// Store is the handle on the database.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect migrations.Dialect
	log     *slog.Logger

	// Placement chooses among the hosts a new VM fits on; the zero value
	// spreads. Set it once, before the store is used.
	Placement capacity.Strategy

	reserved []string // tenant slugs kept for the region's services, beyond the built-in ones

	ledger *hostLedger // placement's copy of the hosts' capacity

	catalog catalogCache // plans, prices and billing settings for pages

	clock func() time.Time // billing's clock; nil is the wall clock
}

// SetClock makes billing (usage records, metering, invoices) read time from
// clock, for tests and for replaying a period. Set it before use.
func (s *Store) SetClock(clock func() time.Time) { s.clock = clock }

// now is billing's time: the store's clock, in UTC to the microsecond.
func (s *Store) now() time.Time {
	if s.clock == nil {
		return now()
	}
	return s.clock().UTC().Truncate(time.Microsecond)
}

// Open connects to the database named by url: a PostgreSQL URL or keyword
// DSN, or a SQLite file ("sqlite:PATH", "file:PATH" or a plain path).
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dialect, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	cfg := &gorm.Config{
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
		Logger: newQueryLogger(log.With("component", "db"), logger.Config{
			SlowThreshold:             time.Second,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true,
			LogLevel:                  logger.Warn,
		}),
	}
	var dial gorm.Dialector
	if dialect == migrations.Postgres {
		dial = postgres.Open(dsn)
	} else {
		conn, err := sql.Open(sqlite.DriverName, dsn)
		if err != nil {
			return nil, fmt.Errorf("open %s database: %w", dialect, err)
		}
		dial = &sqlite.Dialector{DSN: dsn, Conn: newWriterPool(conn, writerWait)}
	}
	db, err := gorm.Open(dial, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	// Idle connections are kept for the busy moments: a new connection costs
	// a server process on PostgreSQL and a pass over the whole schema on
	// SQLite, far more than the queries of one page.
	if dialect == migrations.Postgres {
		sqlDB.SetMaxOpenConns(50)
		sqlDB.SetMaxIdleConns(50)
	} else {
		// The embedded SQLite is built with memory management on, so every
		// connection of the process shares one page cache behind one mutex:
		// past a few statements running at once they only queue on it
		// (measured with 200 portal users: under one core busy, p99 in
		// seconds). Eight connections per core (measured best of 4 to 64 on two
		// cores) keep the cores busy; other
		// statements wait their turn in the pool, in order. All are kept
		// open, because opening one parses the schema again.
		n := sqliteConns()
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return &Store{db: db, sqlDB: sqlDB, dialect: dialect, log: log, ledger: newHostLedger()}, nil
}

// sqliteConns is how many SQLite connections the store opens at most.
func sqliteConns() int { return 8 * runtime.GOMAXPROCS(0) }

func parseURL(raw string) (migrations.Dialect, string, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return "", "", errors.New("database url is empty")
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"), strings.Contains(raw, "host="):
		return migrations.Postgres, raw, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "file:")
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return "", "", errors.New("sqlite database path is empty")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", "", fmt.Errorf("create database directory: %w", err)
		}
	}
	// Foreign keys are off in SQLite unless asked for; IMMEDIATE transactions
	// take the write lock up front so read-then-write never deadlocks.
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return migrations.SQLite, "file:" + path + "?" + q.Encode(), nil
}

// Dialect tells which database this store talks to.
func (s *Store) Dialect() migrations.Dialect { return s.dialect }

// Close releases the connection pool.
func (s *Store) Close() error { return s.sqlDB.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.sqlDB.PingContext(ctx) }

// Migrate applies pending schema migrations.
func (s *Store) Migrate(ctx context.Context) ([]int64, error) {
	return migrations.Up(ctx, s.sqlDB, s.dialect)
}

// CheckSchema refuses an outdated schema.
func (s *Store) CheckSchema(ctx context.Context) error {
	return migrations.Check(ctx, s.sqlDB, s.dialect)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Page selects one page of a list.
type Page struct {
	Number  int // 1-based
	PerPage int
}

// DefaultPerPage is the page size when none is asked for.
const DefaultPerPage = 25

// MaxPerPage bounds what a client may ask for.
const MaxPerPage = 100

func (p Page) norm() Page {
	if p.Number < 1 {
		p.Number = 1
	}
	if p.PerPage <= 0 {
		p.PerPage = DefaultPerPage
	}
	if p.PerPage > MaxPerPage {
		p.PerPage = MaxPerPage
	}
	return p
}

func (p Page) apply(q *gorm.DB) *gorm.DB {
	p = p.norm()
	return q.Limit(p.PerPage).Offset((p.Number - 1) * p.PerPage)
}

// lockTenant serialises changes that are checked against a tenant's quota:
// the first statement of the transaction writes the tenant row, so a
// concurrent transaction for the same tenant waits until this one ends, on
// PostgreSQL (row lock) and SQLite (database write lock) alike.
func lockTenant(tx *gorm.DB, tenantID string) (Tenant, error) {
	res := tx.Model(&Tenant{}).Where("id = ?", tenantID).Update("updated_at", now())
	if res.Error != nil {
		return Tenant{}, fmt.Errorf("lock tenant: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return Tenant{}, E(ErrNotFound, "", "tenant not found")
	}
	var t Tenant
	if err := tx.Where("id = ?", tenantID).Take(&t).Error; err != nil {
		return Tenant{}, fmt.Errorf("load tenant: %w", err)
	}
	return t, nil
}
