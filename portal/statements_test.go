package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// statements counts the SQL statements the portal's store runs.
type statements struct {
	mu  sync.Mutex
	sql []string
}

func countStatements(t testing.TB, e *env) *statements {
	t.Helper()
	s := &statements{}
	if err := e.st.OnStatement(func(sql string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sql = append(s.sql, sql)
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// during returns the statements run while f ran.
func (s *statements) during(f func()) []string {
	s.mu.Lock()
	n := len(s.sql)
	s.mu.Unlock()
	f()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sql[n:]...)
}

// statementBudget is the most statements each customer request below may
// take, whatever the number of VMs: the figures after issue #10's profile,
// pinned so that an N+1 query or a lost cache shows up here first.
var statementBudget = map[string]int{
	// 16 before: session, user, the tenant twice, usage in 4 counts, a VM
	// count nobody shows, plans, billing settings and prices every time.
	"dashboard": 7,
	// 6 before: session and user apart, a count even when the page holds
	// every VM.
	"vms": 4,
}

// TestStatementsPerRequest pins how many SQL statements the dashboard and
// GET /api/v1/vms take, and that the number does not grow with the
// tenant's VMs.
func TestStatementsPerRequest(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, e *env) {
		count := countStatements(t, e)
		tok := e.customer("Counted", "owner@counted.example")
		img := e.image("debian-12")
		key := e.addKey(tok, "laptop")
		b := e.browser()
		b.cookies[e.srv.cookieName(sessionCookie)] = tok
		b.csrf()
		requests := map[string]func(){
			"dashboard": func() {
				res, doc := b.get("/dashboard")
				if res.StatusCode != http.StatusOK || !strings.Contains(doc.Find("h1").Text(), "Dashboard") {
					t.Fatalf("dashboard: %d %s", res.StatusCode, doc.Find("main").Text())
				}
			},
			"vms": func() {
				req := httptest.NewRequest("GET", "/api/v1/vms", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res := e.do(req)
				_ = res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("vms: %d", res.StatusCode)
				}
			},
		}
		seen := map[string]int{}
		for _, vms := range []int{1, 4} {
			for len(seen) < vms {
				name := "vm-" + string(rune('a'+len(seen)))
				e.order(tok, name, "nano", img.ID, key)
				seen[name] = 1
			}
			for name, req := range requests {
				req() // the first request may note the session's use
				sql := count.during(req)
				t.Logf("%s with %d VMs: %d statements\n%s", name, vms, len(sql), strings.Join(sql, "\n"))
				if len(sql) > statementBudget[name] {
					t.Errorf("%s with %d VMs takes %d statements, budget %d:\n%s", name, vms, len(sql), statementBudget[name], strings.Join(sql, "\n"))
				}
			}
		}
	})
}

// TestVMListTotals checks the total of every kind of page now that a page
// that is not full gives it without counting.
func TestVMListTotals(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, e *env) {
		tok := e.customer("Paged", "owner@paged.example")
		img := e.image("debian-12")
		key := e.addKey(tok, "laptop")
		for _, name := range []string{"a", "b", "c", "d"} {
			e.order(tok, name, "nano", img.ID, key)
		}
		for _, tc := range []struct {
			query string
			items int
		}{
			{"", 4}, {"?per_page=2", 2}, {"?per_page=2&page=2", 2}, {"?per_page=3&page=2", 1},
			{"?per_page=4", 4}, {"?per_page=2&page=3", 0}, {"?per_page=5&page=2", 0},
		} {
			list := e.want(http.StatusOK, "GET", "/api/v1/vms"+tc.query, tok, nil)
			if list["total"] != float64(4) || len(items(list)) != tc.items {
				t.Errorf("%q: total %v, %d items; want 4, %d", tc.query, list["total"], len(items(list)), tc.items)
			}
		}
		if l := e.want(http.StatusOK, "GET", "/api/v1/vms", e.customer("Empty", "owner@empty.example"), nil); l["total"] != float64(0) || len(items(l)) != 0 {
			t.Errorf("empty tenant: %v", l)
		}
	})
}

// TestDashboardCatalogChange shows that the cached plan list and prices
// never hide a change made through the portal: the next dashboard shows it.
func TestDashboardCatalogChange(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		tok := e.customer("Cached", "owner@cached.example")
		b := e.browser()
		b.cookies[e.srv.cookieName(sessionCookie)] = tok
		text := func() string {
			res, doc := b.get("/dashboard")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("dashboard: %d", res.StatusCode)
			}
			return doc.Find("main").Text()
		}
		if s := text(); strings.Contains(s, "No plans are offered") {
			t.Fatalf("plans offered at first: %s", s)
		}
		plans, err := e.st.ListPlans(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range plans {
			in := store.PlanInput{Name: p.Name, VCPUs: p.VCPUs, MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB, Enabled: false}
			if _, err := e.st.UpdatePlan(ctx, store.Actor{Email: "staff@isp.example"}, p.ID, in); err != nil {
				t.Fatal(err)
			}
		}
		if s := text(); !strings.Contains(s, "No plans are offered") {
			t.Errorf("plans still offered after staff disabled them all: %s", s)
		}
	})
}
