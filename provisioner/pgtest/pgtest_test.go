package pgtest_test

import (
	"context"
	"flag"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %q: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestIsolation runs two parallel tests that each create the same table in
// their own database and must see only their own rows and tables.
func TestIsolation(t *testing.T) {
	// Both subtests check while both databases exist, which needs them to
	// run at the same time; with -parallel 1 they run one after the other.
	concurrent := true
	if f := flag.Lookup("test.parallel"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil && n < 2 {
			concurrent = false
		}
	}
	ready := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	done := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	dbs := map[string]chan string{"a": make(chan string, 1), "b": make(chan string, 1)}
	wait := func(t *testing.T, ch chan struct{}) {
		t.Helper()
		if !concurrent {
			return
		}
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatal("other subtest did not arrive")
		}
	}

	for self, other := range map[string]string{"a": "b", "b": "a"} {
		t.Run(self, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			conn := connect(t, pgtest.DSN(t))
			for _, sql := range []string{
				"CREATE TABLE items (name text NOT NULL)",
				"INSERT INTO items (name) VALUES ('" + self + "')",
				"CREATE TABLE only_" + self + " ()",
			} {
				if _, err := conn.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			var db string
			if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
				t.Fatal(err)
			}
			dbs[self] <- db

			close(ready[self])
			wait(t, ready[other])
			defer wait(t, done[other]) // keep this database until the other has checked
			defer close(done[self])

			rows, err := conn.Query(ctx, "SELECT name FROM items")
			if err != nil {
				t.Fatal(err)
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 1 || names[0] != self {
				t.Errorf("items = %q, want [%q]", names, self)
			}
			var otherTable *string
			if err := conn.QueryRow(ctx, "SELECT to_regclass('only_"+other+"')::text").Scan(&otherTable); err != nil {
				t.Fatal(err)
			}
			if otherTable != nil {
				t.Errorf("table only_%s of the other test is visible", other)
			}
			if concurrent {
				if otherDB := <-dbs[other]; otherDB == db {
					t.Errorf("both tests got database %s", db)
				}
			}
		})
	}
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	conn := connect(t, pgtest.DSN(t))
	var got string
	if err := conn.QueryRow(t.Context(), "SELECT current_setting('max_connections')").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "200" {
		t.Errorf("max_connections = %s, want 200", got)
	}
}

// TestDropOnCleanup checks that a test's database is gone once the test is.
func TestDropOnCleanup(t *testing.T) {
	t.Parallel()
	var name string
	var leaked *pgx.Conn
	t.Run("inner", func(t *testing.T) {
		conn := connect(t, pgtest.DSN(t))
		if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		// A session still open at cleanup must not keep the database from
		// being dropped.
		open, err := pgx.Connect(t.Context(), conn.Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		leaked = open
	})
	if leaked != nil {
		defer leaked.Close(context.Background())
	}
	conn := connect(t, pgtest.DSN(t))
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test finished", name)
	}
}

// TestClusterStopStart checks that a test's own cluster keeps its port and
// data across Stop and Start, and is unreachable in between.
func TestClusterStopStart(t *testing.T) {
	t.Parallel()
	c := pgtest.NewCluster(t)
	conn := connect(t, c.DSN())
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())

	c.Stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if down, err := pgx.Connect(ctx, c.DSN()); err == nil {
		down.Close(context.Background())
		t.Fatal("connected to a stopped cluster")
	}

	c.Start(t)
	var n int
	if err := connect(t, c.DSN()).QueryRow(t.Context(), "SELECT n FROM kept").Scan(&n); err != nil || n != 7 {
		t.Errorf("after Start: n = %d, %v; want 7", n, err)
	}
}
