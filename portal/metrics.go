package portal

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// metrics keeps request counters for /metrics in Prometheus text format.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]int64
	seconds  map[reqKey]float64
	started  time.Time
}

type reqKey struct {
	method, route string
	status        int
}

func newMetrics() *metrics {
	return &metrics{requests: map[reqKey]int64{}, seconds: map[reqKey]float64{}, started: time.Now()}
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	k := reqKey{method, route, status}
	m.mu.Lock()
	m.requests[k]++
	m.seconds[k] += d.Seconds()
	m.mu.Unlock()
}

func promLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func (s *Server) handleMetrics(c *fiber.Ctx) error {
	var b strings.Builder
	m := s.metrics
	m.mu.Lock()
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].route != keys[j].route {
			return keys[i].route < keys[j].route
		}
		if keys[i].method != keys[j].method {
			return keys[i].method < keys[j].method
		}
		return keys[i].status < keys[j].status
	})
	b.WriteString("# HELP fibrix_http_requests_total HTTP requests served by the portal.\n# TYPE fibrix_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "fibrix_http_requests_total{method=%q,route=\"%s\",status=\"%d\"} %d\n", k.method, promLabel(k.route), k.status, m.requests[k])
	}
	b.WriteString("# HELP fibrix_http_request_duration_seconds_sum Time spent serving requests.\n# TYPE fibrix_http_request_duration_seconds_sum counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "fibrix_http_request_duration_seconds_sum{method=%q,route=\"%s\",status=\"%d\"} %g\n", k.method, promLabel(k.route), k.status, m.seconds[k])
	}
	uptime := time.Since(m.started).Seconds()
	m.mu.Unlock()
	fmt.Fprintf(&b, "# HELP fibrix_uptime_seconds Seconds since the portal started.\n# TYPE fibrix_uptime_seconds gauge\nfibrix_uptime_seconds %g\n", uptime)
	if counts, err := s.store.VMStateCounts(c.UserContext()); err == nil {
		b.WriteString("# HELP fibrix_vms VMs by state.\n# TYPE fibrix_vms gauge\n")
		states := make([]string, 0, len(counts))
		for st := range counts {
			states = append(states, st)
		}
		sort.Strings(states)
		for _, st := range states {
			fmt.Fprintf(&b, "fibrix_vms{state=\"%s\"} %d\n", promLabel(st), counts[st])
		}
	}
	c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	return c.SendString(b.String())
}

func (s *Server) handleHealth(c *fiber.Ctx) error {
	if err := s.store.Ping(c.UserContext()); err != nil {
		s.logger(c).Warn("health check: database unreachable", "err", err)
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "database": "unreachable"})
	}
	return c.JSON(fiber.Map{"status": "ok", "database": string(s.store.Dialect()), "version": s.cfg.Version})
}
