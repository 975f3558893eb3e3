package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/glebarez/go-sqlite"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// sameDB opens a second Store on the database of a store opened with
// openStore, as a second process would.
func sameDB(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CheckSchema(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// ledgerDB opens the database behind the stores directly, to check the
// ledger with SQL rather than through the code under test.
func ledgerDB(t *testing.T, s *store.Store, url string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", url
	if s.Dialect() != "postgres" {
		driver, dsn = "sqlite", "file:"+url+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// hostLedger is one host's row and what the VMs placed on it add up to.
type hostLedger struct {
	name                         string
	host                         capacity.Host
	vms                          int64
	sumVCPUs, sumMemory, sumDisk int64
}

func readLedgers(t *testing.T, db *sql.DB) []hostLedger {
	t.Helper()
	rows, err := db.Query(`SELECT h.name, h.cores, h.memory_mib, h.disk_gib, h.cpu_ratio, h.memory_ratio, h.disk_ratio,
	h.reserved_cores, h.reserved_memory_mib, h.reserved_disk_gib, h.alloc_vcpus, h.alloc_memory_mib, h.alloc_disk_gib,
	COUNT(v.id), COALESCE(SUM(v.vcpus), 0), COALESCE(SUM(v.memory_mib), 0), COALESCE(SUM(v.disk_gib), 0)
FROM hosts h LEFT JOIN vms v ON v.host_id = h.id AND v.deleted_at IS NULL
GROUP BY h.id, h.name, h.cores, h.memory_mib, h.disk_gib, h.cpu_ratio, h.memory_ratio, h.disk_ratio,
	h.reserved_cores, h.reserved_memory_mib, h.reserved_disk_gib, h.alloc_vcpus, h.alloc_memory_mib, h.alloc_disk_gib
ORDER BY h.name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []hostLedger
	for rows.Next() {
		var l hostLedger
		h := &l.host
		if err := rows.Scan(&l.name, &h.Cores, &h.MemoryMiB, &h.DiskGiB, &h.CPURatio, &h.MemoryRatio, &h.DiskRatio,
			&h.Reserved.VCPUs, &h.Reserved.MemoryMiB, &h.Reserved.DiskGiB, &h.Allocated.VCPUs, &h.Allocated.MemoryMiB, &h.Allocated.DiskGiB,
			&l.vms, &l.sumVCPUs, &l.sumMemory, &l.sumDisk); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLedgers fails the test for any host over its capacity × ratio or
// whose ledger differs from what is placed on it, and returns how many
// VMs are placed in all.
func checkLedgers(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var placed int64
	for _, l := range readLedgers(t, db) {
		if f := l.host.Figures(); f.CPU.Free < 0 || f.Memory.Free < 0 || f.Disk.Free < 0 {
			t.Errorf("%s over-committed: %d vCPU, %d MiB, %d GiB free", l.name, f.CPU.Free, f.Memory.Free, f.Disk.Free)
		}
		if a := l.host.Allocated; a.VCPUs != l.sumVCPUs || a.MemoryMiB != l.sumMemory || a.DiskGiB != l.sumDisk {
			t.Errorf("%s: ledger %+v, its %d VMs add up to %d vCPU, %d MiB, %d GiB", l.name, a, l.vms, l.sumVCPUs, l.sumMemory, l.sumDisk)
		}
		placed += l.vms
	}
	return placed
}

// fits is how many VMs needing n fit on a host as it stands.
func fits(h capacity.Host, n capacity.Resources) int64 {
	f := h.Free()
	return max(0, min(f.VCPUs/n.VCPUs, f.MemoryMiB/n.MemoryMiB, f.DiskGiB/n.DiskGiB))
}

var smallPlan = capacity.Resources{VCPUs: 1, MemoryMiB: 2048, DiskGiB: 20}

// TestOrdersFromTwoStoresNeverOvercommit races 500 orders from 100 tenants
// through two Stores on one PostgreSQL database, as two portal processes
// would, for a fleet that is nearly full: some hosts bound by CPU, some by
// memory (one at 1.5×, one with memory reserved), some by disk. Each Store
// places from its own ledger and neither sees the other's reservations, so
// the guarded UPDATE is all that stands between them and over-commit.
// Afterwards the database itself must show no host over capacity × ratio,
// every ledger equal to the VMs placed on it, and exactly as many VMs
// placed as fitted.
func TestOrdersFromTwoStoresNeverOvercommit(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DSN(t)
	a := openStore(t, url)
	b := sameDB(t, url)
	const tenants, orders = 100, 500
	fs := make([]fixture, tenants)
	for i := range fs {
		fs[i] = bigTenant(t, a, fmt.Sprintf("tenant-%d", i))
	}
	onlyHosts(t, a)
	db := ledgerDB(t, a, url)
	for i := range 12 {
		// CPU binds: 3–14 small VMs at 1.0×.
		addHost(t, a, store.HostInput{Name: fmt.Sprintf("kvm-cpu-%d", i), CPURatio: 1},
			store.Facts{Cores: int64(3 + i), MemoryMiB: 1 << 20, DiskGiB: 100000})
		// Memory binds: 4–15 small VMs, with up to 2 GiB spare that fits none.
		addHost(t, a, store.HostInput{Name: fmt.Sprintf("kvm-mem-%d", i)},
			store.Facts{Cores: 256, MemoryMiB: int64(4+i)*2048 + int64(i)*186, DiskGiB: 100000})
		// Disk binds: 5–16 small VMs, with up to 19 GiB spare.
		addHost(t, a, store.HostInput{Name: fmt.Sprintf("kvm-disk-%d", i)},
			store.Facts{Cores: 256, MemoryMiB: 1 << 20, DiskGiB: int64(5+i)*20 + int64(i*19/11)})
	}
	addHost(t, a, store.HostInput{Name: "kvm-mem-ratio", MemoryRatio: 1.5}, store.Facts{Cores: 256, MemoryMiB: 10000, DiskGiB: 100000})
	addHost(t, a, store.HostInput{Name: "kvm-mem-reserved", ReservedMemoryMiB: 3000}, store.Facts{Cores: 256, MemoryMiB: 20000, DiskGiB: 100000})
	// Nearly full: a few VMs placed already, through the first Store only,
	// whose ledger is warm while the second's is cold.
	for i := range 20 {
		if _, err := a.CreateVM(ctx, fs[i].actor, fs[i].tenant.ID, order(fs[i], "early", "small")); err != nil {
			t.Fatal(err)
		}
	}
	var room int64
	for _, l := range readLedgers(t, db) {
		room += fits(l.host, smallPlan)
	}
	if room < 250 || room > 400 {
		t.Fatalf("the fleet has room for %d; the test wants a few hundred", room)
	}

	jobs := make(chan int)
	errs := make([]error, orders)
	var wg sync.WaitGroup
	for w := range 16 {
		s := []*store.Store{a, b}[w%2]
		wg.Go(func() {
			for i := range jobs {
				f := fs[i%tenants]
				_, errs[i] = s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%d", i), "small"))
			}
		})
	}
	for i := range orders {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	var ok int64
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrNoCapacity):
			t.Errorf("order %d: %v", i, err)
		}
	}
	if ok != room {
		t.Errorf("%d orders succeeded; %d fitted", ok, room)
	}
	if placed := checkLedgers(t, db); placed != 20+room {
		t.Errorf("%d VMs placed; want %d", placed, 20+room)
	}
	for _, l := range readLedgers(t, db) {
		if n := fits(l.host, smallPlan); n != 0 {
			t.Errorf("%s still has room for %d after the race", l.name, n)
		}
	}
}

// TestStaleLedgerNeverOvercommits works two Stores on one database so that
// each one's ledger is out of date in every way it can be — the other
// filled a host, added one, put one in maintenance, gave room back — and
// checks orders land where the database says and never over-commit. It
// ends with a host shrunk behind every Store's back, in SQL.
func TestStaleLedgerNeverOvercommits(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := filepath.Join(t.TempDir(), "fibrix.db")
			if dialect == "postgres" {
				url = pgtest.DSN(t)
			}
			a := openStore(t, url)
			b := sameDB(t, url)
			db := ledgerDB(t, a, url)
			f := bigTenant(t, a, "stale")
			onlyHosts(t, a)
			n := 0
			orderOn := func(s *store.Store) (store.VM, error) {
				n++
				return s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%d", n), "small"))
			}
			mustPlace := func(s *store.Store, host string) store.VM {
				t.Helper()
				vm, err := orderOn(s)
				if err != nil {
					t.Fatalf("order: %v", err)
				}
				if got := hostOf(t, s, f.tenant.ID, vm.ID); got.Name != host {
					t.Errorf("placed on %s; want %s", got.Name, host)
				}
				return vm
			}
			mustRefuse := func(s *store.Store, want string) {
				t.Helper()
				if _, err := orderOn(s); !errors.Is(err, store.ErrNoCapacity) || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("order: %v; want %q", err, want)
				}
			}
			// Room for 4 small VMs.
			addHost(t, a, store.HostInput{Name: "kvm-a"}, store.Facts{Cores: 64, MemoryMiB: 8192, DiskGiB: 1000})
			first := mustPlace(a, "kvm-a")
			// b fills kvm-a; a's ledger still shows room for three.
			for range 3 {
				mustPlace(b, "kvm-a")
			}
			mustRefuse(a, "no host has 2 GiB RAM free; best has 0 MiB at 1.0× memory overcommit")
			// b adds a host: a places there.
			kvmB := addHost(t, b, store.HostInput{Name: "kvm-b"}, store.Facts{Cores: 64, MemoryMiB: 4096, DiskGiB: 1000})
			mustPlace(a, "kvm-b")
			// b puts it in maintenance: a does not place there.
			if _, err := b.UpdateHost(ctx, staff, kvmB.ID, store.HostSettings{CPURatio: 4, MemoryRatio: 1, DiskRatio: 1, Enabled: true, Maintenance: true}); err != nil {
				t.Fatal(err)
			}
			mustRefuse(a, "no host has 2 GiB RAM free; best has 0 MiB at 1.0× memory overcommit")
			// b gives room back on kvm-a: a places there again.
			if err := b.ReleaseHostCapacity(ctx, first.ID); err != nil {
				t.Fatal(err)
			}
			mustPlace(a, "kvm-a")
			// Back from maintenance with memory at 2.0×, set by b: a sees
			// the room for two more that the ratio made.
			if _, err := b.UpdateHost(ctx, staff, kvmB.ID, store.HostSettings{CPURatio: 4, MemoryRatio: 2, DiskRatio: 1, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			mustPlace(a, "kvm-b")
			mustPlace(a, "kvm-b")
			if got := checkLedgers(t, db); got != 7 {
				t.Errorf("%d VMs placed; want 7", got)
			}
			// Shrink kvm-b in SQL to what it holds, which no Store hears
			// of: both ledgers now offer room that is not there.
			if _, err := db.Exec(`UPDATE hosts SET memory_mib = 3072 WHERE name = 'kvm-b'`); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*store.Store{a, b, a, b} {
				// Either host may be named as the closest.
				mustRefuse(s, "no host has 2 GiB RAM free; best has 0 MiB at ")
			}
			if got := checkLedgers(t, db); got != 7 {
				t.Errorf("%d VMs placed after shrinking; want 7", got)
			}
		})
	}
}
