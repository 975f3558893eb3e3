// Package migrations owns the database schema: ordered SQL files applied
// forward, each in its own transaction, on SQLite and PostgreSQL alike.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Dialect names the SQL dialect of a database.
type Dialect string

// The dialects Fibrix runs on.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrOutdated reports a schema older than this binary expects.
var ErrOutdated = errors.New("database schema is outdated")

func provider(db *sql.DB, d Dialect) (*goose.Provider, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	gd := goose.DialectSQLite3
	if d == Postgres {
		gd = goose.DialectPostgres
		// Several portal replicas may start at once; only one migrates.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(gd, db, files, opts...)
}

// Up applies every pending migration and returns the versions applied.
func Up(ctx context.Context, db *sql.DB, d Dialect) ([]int64, error) {
	p, err := provider(db, d)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	applied := make([]int64, 0, len(res))
	for _, r := range res {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Check returns ErrOutdated when migrations are pending, naming both versions.
func Check(ctx context.Context, db *sql.DB, d Dialect) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current < target {
		return fmt.Errorf("%w: at version %d, this binary needs %d (run `fibrix migrate` or start with --migrate)", ErrOutdated, current, target)
	}
	if current > target {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d); upgrade the binary", current, target)
	}
	return nil
}
