package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// eachDBURL is eachDBRaw that also gives the database's URL, for tests
// that start other processes on it.
func eachDBURL(t *testing.T, fn func(t *testing.T, s *store.Store, url string, raw *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "fibrix.db")
		s := openStore(t, path)
		fn(t, s, path, rawDB(t, sqlite.Open("file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DSN(t)
		s := openStore(t, dsn)
		fn(t, s, dsn, rawDB(t, postgres.Open(dsn)))
	})
}

// TestMeterChild is the process TestMeteringSurvivesKill kills: it meters
// one month over and over on the database it is given.
func TestMeterChild(t *testing.T) {
	url := os.Getenv("FIBRIX_METER_CHILD_DB")
	if url == "" {
		t.Skip("run by TestMeteringSurvivesKill")
	}
	ctx := context.Background()
	s, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	until, err := time.Parse(time.RFC3339, os.Getenv("FIBRIX_METER_CHILD_UNTIL"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("metering")
	for {
		if _, err := s.MeterMonth(ctx, "2026-12", until); err != nil {
			t.Fatal(err)
		}
		fmt.Println("pass")
	}
}

// TestMeteringSurvivesKill kills a metering process with SIGKILL at random
// moments while it rewrites a month of totals for a few thousand VMs, then
// meters again: every VM's hours are exactly what its usage records say,
// none lost and none twice.
func TestMeteringSurvivesKill(t *testing.T) {
	eachDBURL(t, func(t *testing.T, s *store.Store, url string, raw *gorm.DB) {
		ctx := context.Background()
		start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		var tenants []string
		for i := range 40 {
			ten, _, err := s.SignUp(ctx, store.Actor{}, fmt.Sprintf("Crash %d", i), fmt.Sprintf("c%d@crash.example", i), "hash")
			if err != nil {
				t.Fatal(err)
			}
			tenants = append(tenants, ten.ID)
		}
		// VM i runs from hour i%300 (+10 min) for 1 + i%50 hours, then
		// stays stopped until the end of the month.
		var recs []store.UsageRecord
		want := map[string]int64{}
		for i := range 4000 {
			id := fmt.Sprintf("vm-%05d", i)
			on := start.Add(time.Duration(i%300)*time.Hour + 10*time.Minute)
			off := on.Add(time.Duration(1+i%50) * time.Hour)
			recs = append(recs,
				store.UsageRecord{ID: id + "-r", TenantID: tenants[i%len(tenants)], ResourceKind: store.ResourceVM, ResourceID: id,
					ResourceName: id, Item: "plan:none", Class: store.UsageRunning, StartedAt: on, EndedAt: &off},
				store.UsageRecord{ID: id + "-s", TenantID: tenants[i%len(tenants)], ResourceKind: store.ResourceVM, ResourceID: id,
					ResourceName: id, Item: "plan:none", Class: store.UsageStopped, StartedAt: off})
			// Started hours from the hour of "on" to the end of the month
			// (unpriced stopped VMs bill).
			want[id] = int64(31*24 - i%300)
		}
		if err := raw.CreateInBatches(recs, 500).Error; err != nil {
			t.Fatal(err)
		}
		end := start.AddDate(0, 1, 0)
		// A first pass over part of the month, so that killed passes
		// leave a mix of older and newer totals.
		if _, err := s.MeterMonth(ctx, "2026-12", start.Add(100*time.Hour)); err != nil {
			t.Fatal(err)
		}
		killed := 0
		for round := range 6 {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestMeterChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "FIBRIX_METER_CHILD_DB="+url, "FIBRIX_METER_CHILD_UNTIL="+end.Format(time.RFC3339))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			if !lines.Scan() || lines.Text() != "metering" {
				_ = cmd.Process.Kill()
				t.Fatalf("child did not start: %q", lines.Text())
			}
			time.Sleep(time.Duration(rand.IntN(400)+20*round) * time.Millisecond)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killed++
		}
		rep, err := s.MeterMonth(ctx, "2026-12", end)
		if err != nil {
			t.Fatal(err)
		}
		var rows []store.UsageTotal
		if err := raw.Where("month = ?", "2026-12").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, r := range rows {
			got[r.ResourceID] += r.Hours
		}
		bad := 0
		for id, h := range want {
			if got[id] != h {
				if bad++; bad <= 5 {
					t.Errorf("%s: %d hours, want %d", id, got[id], h)
				}
			}
		}
		if bad > 0 || len(got) != len(want) || rep.Resources != len(want) {
			t.Fatalf("%d of %d VMs wrong, %d metered, report %+v", bad, len(want), len(got), rep)
		}
		t.Logf("metering killed %d times; %d VMs exact after one more pass", killed, len(want))
	})
}
