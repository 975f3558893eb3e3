package migrations_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	_ "github.com/glebarez/go-sqlite"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fibrixcloud/fibrix/migrations"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestUpDownUp applies every migration, rolls all back and applies them
// again, on both dialects, and checks the schema check follows along.
func TestUpDownUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		driver  string
		dialect migrations.Dialect
		dsn     func(t testing.TB) string
	}{
		{"sqlite", "sqlite", migrations.SQLite, func(t testing.TB) string {
			return "file:" + filepath.Join(t.TempDir(), "m.db") + "?_pragma=foreign_keys(1)"
		}},
		{"postgres", "pgx", migrations.Postgres, pgtest.DSN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sql.Open(tc.driver, tc.dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := migrations.Check(ctx, db, tc.dialect); err == nil {
				t.Fatal("empty database passed the schema check")
			}
			applied, err := migrations.Up(ctx, db, tc.dialect)
			if err != nil || len(applied) < 2 {
				t.Fatalf("up: %v %v", applied, err)
			}
			if err := migrations.Check(ctx, db, tc.dialect); err != nil {
				t.Fatal(err)
			}
			gd := goose.DialectSQLite3
			if tc.dialect == migrations.Postgres {
				gd = goose.DialectPostgres
			}
			p, err := goose.NewProvider(gd, db, os.DirFS("."), goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.DownTo(ctx, 0); err != nil {
				t.Fatalf("down: %v", err)
			}
			if err := migrations.Check(ctx, db, tc.dialect); err == nil {
				t.Fatal("rolled-back database passed the schema check")
			}
			if _, err := migrations.Up(ctx, db, tc.dialect); err != nil {
				t.Fatalf("up again: %v", err)
			}
		})
	}
}
