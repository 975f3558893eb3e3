package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"
)

// The SQLite load: clients, the tenants they share, and how long they run.
const (
	sqliteClients  = 50
	sqliteTenants  = 10
	sqliteDuration = 60 * time.Second
)

// TestSQLiteConcurrentClients runs `fibrix serve` on its default SQLite
// database (WAL, busy timeout, immediate write transactions) and lets 50
// API clients of 10 tenants list, create and delete SSH keys, DNS records
// and VM orders as fast as they can for 60 s. No answer may be a 5xx or
// mention a locked database, the server log must show no locking either,
// and every create and delete acknowledged with a 2xx must be in the
// database afterwards. FIBRIX_SQLITE_LOAD_DURATION (a Go duration) shortens
// the run outside CI.
func TestSQLiteConcurrentClients(t *testing.T) {
	duration := sqliteDuration
	if v := os.Getenv("FIBRIX_SQLITE_LOAD_DURATION"); v != "" && os.Getenv("CI") == "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FIBRIX_SQLITE_LOAD_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "serve")
	srv := startFaultServer(t, bin, dataDir, "--migrate")
	staff := srv.staffClient(t)
	staff.must(t, "PUT", "/admin/quota-defaults", map[string]int64{"instances": 50, "vcpus": 100, "memory_mib": 102400,
		"disk_gib": 2000, "ssh_keys": 5000, "port_forwards": 5}, 200)
	image := filepath.Join(t.TempDir(), "debian-12.qcow2")
	content := []byte("a stand-in image: no host is ever asked to fetch it\n")
	if err := os.WriteFile(image, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	staff.must(t, "POST", "/admin/images", map[string]any{"name": "debian-12", "os": "Debian", "version": "12",
		"source_url": "file://" + image, "checksum": "sha256:" + hex.EncodeToString(sum[:])}, 201)

	tokens := make([]string, sqliteTenants)
	for i := range tokens {
		// Each from an address of its own: the portal budgets sign-ups per address.
		c := srv.signUp(t, fmt.Sprintf("Load Shop %02d", i), fmt.Sprintf("owner%02d@load%02d.example", i, i), fmt.Sprintf("127.0.2.%d", i+1))
		tokens[i] = c.token
	}

	var (
		tally sqliteTally
		book  sqliteBook
		wg    sync.WaitGroup
	)
	began := time.Now()
	deadline := began.Add(duration)
	for i := range sqliteClients {
		cl := &sqliteClient{faultClient: newFaultClient(srv.url, tokens[i%sqliteTenants]),
			rnd: rand.New(rand.NewPCG(uint64(i), uint64(began.UnixNano())))}
		cl.http.Transport = &http.Transport{MaxIdleConnsPerHost: 1}
		name := fmt.Sprintf("c%02d", i)
		res := cl.do("POST", "/ssh-keys", map[string]string{"name": name, "public_key": newAuthorizedKey(name)})
		if cl.loginKey = createdID(res); cl.loginKey == "" {
			t.Fatalf("ssh key of client %d: %d %v %s", i, res.status, res.err, res.body)
		}
		book.created("ssh_keys", cl.loginKey)
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				cl.step(fmt.Sprintf("%s-%d", name, n), &tally, &book)
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	total, byKind := tally.summary()
	t.Logf("%d requests in %s (%.0f/s): %s", total, took.Round(time.Second), float64(total)/took.Seconds(), byKind)
	for _, f := range tally.failures(20) {
		t.Error(f)
	}
	if total < sqliteClients*10 {
		t.Errorf("only %d requests in %s: the clients hardly ran", total, took)
	}

	logText := srv.logText()
	srv.stop(t)
	for _, bad := range []string{"database is locked", "SQLITE_BUSY", "status=500", "status=503", `msg="request failed`} {
		if n := strings.Count(logText, bad); n > 0 {
			t.Errorf("the server log has %d lines with %q, e.g. %s", n, bad, firstLineWith(logText, bad))
		}
	}
	t.Logf("server log lines at warn and error level: %v", logLevels(logText))
	for _, msg := range []string{`msg="SQL executed"`, `msg="dns zone refresh"`} {
		if line := firstLineWith(logText, msg); line != "" {
			t.Logf("e.g. %s", line)
		}
	}

	// Every acknowledged change is in the database file.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "fibrix.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	book.check(t, db)
}

// sqliteClient is one of the load's API clients.
type sqliteClient struct {
	*faultClient
	rnd      *rand.Rand
	loginKey string // the SSH key its VM orders name
	// How many of its SSH keys and DNS records it keeps: a few, so that
	// the tenants stay within their quotas.
	keys, records int
}

// sqliteKeep is how many SSH keys and DNS records a client keeps; the
// others it deletes at once. Five clients share a tenant, whose DNS
// records are capped at 50.
const sqliteKeep = 5

// step is one request, or two when the client deletes what it made:
// mostly reads, then creates of SSH keys, DNS records and VM orders.
func (c *sqliteClient) step(name string, tally *sqliteTally, book *sqliteBook) {
	switch p := c.rnd.IntN(100); {
	case p < 50:
		path := []string{"/vms", "/account", "/ssh-keys", "/dns/records", "/quota"}[c.rnd.IntN(5)]
		tally.add("read", c.do("GET", path, nil), 200)
	case p < 70:
		res := c.do("POST", "/ssh-keys", map[string]string{"name": name, "public_key": newAuthorizedKey(name)})
		tally.add("ssh key create", res, 201)
		if id := createdID(res); id != "" {
			book.created("ssh_keys", id)
			if c.keys < sqliteKeep {
				c.keys++
				return
			}
			if tally.add("ssh key delete", c.do("DELETE", "/ssh-keys/"+id, nil), 204) {
				book.deleted("ssh_keys", id)
			}
		}
	case p < 90:
		res := c.do("POST", "/dns/records", map[string]any{"name": name, "type": "A",
			"value": fmt.Sprintf("192.0.2.%d", 1+c.rnd.IntN(254))})
		tally.add("dns record create", res, 201)
		if id := createdID(res); id != "" {
			book.created("dns_records", id)
			if c.records < sqliteKeep {
				c.records++
				return
			}
			if tally.add("dns record delete", c.do("DELETE", "/dns/records/"+id, nil), 204) {
				book.deleted("dns_records", id)
			}
		}
	default:
		// No host serves this region, so an order is refused for want of
		// capacity, after the same locked quota check an accepted one has.
		res := c.do("POST", "/vms", map[string]any{"name": name, "plan": "nano", "image": "debian-12", "ssh_keys": []string{c.loginKey}})
		if res.status == 201 {
			tally.add("vm order", res, 201)
			if id := createdID(res); id != "" {
				book.created("vms", id)
				if tally.add("vm delete", c.do("DELETE", "/vms/"+id, nil), 202) {
					book.deleted("vms", id)
				}
			}
			return
		}
		tally.add("vm order", res, 422)
	}
}

func createdID(res faultResult) string {
	var v struct{ ID string }
	if res.status != 201 || json.Unmarshal(res.body, &v) != nil {
		return ""
	}
	return v.ID
}

// sqliteTally counts answers by kind and status and keeps the unexpected ones.
type sqliteTally struct {
	mu     sync.Mutex
	counts map[string]int
	slow   time.Duration // the longest answer
	bad    []string
	nbad   int
}

// add records res and tells whether it had the wanted status. An answer
// is bad when its status differs, when it is a 5xx, or when it mentions a
// locked database.
func (t *sqliteTally) add(kind string, res faultResult, want int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[fmt.Sprintf("%s %d", kind, res.status)]++
	t.slow = max(t.slow, res.end.Sub(res.start))
	ok := res.err == nil && res.status == want
	body := string(res.body)
	if want == 422 && !strings.Contains(body, `"no_capacity"`) {
		ok = false
	}
	if strings.Contains(body, "database is locked") || strings.Contains(body, "SQLITE_BUSY") {
		ok = false
	}
	if !ok {
		t.nbad++
		if len(t.bad) < 20 {
			t.bad = append(t.bad, fmt.Sprintf("%s: %s %s after %s: %d %v %.300s, want %d", kind, res.method, res.path,
				res.end.Sub(res.start).Round(time.Millisecond), res.status, res.err, res.body, want))
		}
	}
	return ok && want < 300
}

func (t *sqliteTally) summary() (int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.counts))
	total := 0
	for k, n := range t.counts {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, t.counts[k])
	}
	fmt.Fprintf(&b, "longest answer %s", t.slow.Round(time.Millisecond))
	return total, b.String()
}

func (t *sqliteTally) failures(limit int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.bad
	if t.nbad > len(out) {
		out = append(out, fmt.Sprintf("… %d unexpected answers in all", t.nbad))
	}
	return out
}

// sqliteBook records the rows clients were told were created and deleted,
// by table.
type sqliteBook struct {
	mu   sync.Mutex
	rows map[string]map[string]bool // table → id → still there
}

func (b *sqliteBook) created(table, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rows == nil {
		b.rows = map[string]map[string]bool{}
	}
	if b.rows[table] == nil {
		b.rows[table] = map[string]bool{}
	}
	b.rows[table][id] = true
}

func (b *sqliteBook) deleted(table, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows[table][id] = false
}

// check compares the book with the database: a deleted VM stays as a row
// until the provisioner ends it, so for VMs only presence is checked.
func (b *sqliteBook) check(t *testing.T, db *sql.DB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, table := range []string{"ssh_keys", "dns_records", "vms"} {
		in := map[string]bool{}
		rows, err := db.QueryContext(ctx, "SELECT id FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			in[id] = true
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		bad, kept, gone := 0, 0, 0
		for id, there := range b.rows[table] {
			switch {
			case there && !in[id]:
				bad++
				if bad <= 10 {
					t.Errorf("%s %s: the create was acknowledged but the row is missing", table, id)
				}
			case !there && in[id] && table != "vms":
				bad++
				if bad <= 10 {
					t.Errorf("%s %s: the delete was acknowledged but the row is still there", table, id)
				}
			case there:
				kept++
			default:
				gone++
			}
		}
		t.Logf("%s: %d acknowledged creates, %d still there, %d deleted, %d wrong", table, len(b.rows[table]), kept, gone, bad)
		if table != "vms" && len(b.rows[table]) == 0 {
			t.Errorf("%s: no create was acknowledged", table)
		}
	}
}

func firstLineWith(text, s string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
