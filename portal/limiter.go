package portal

import (
	"sync"
	"time"
)

// limiter counts failures per key in a sliding window. It lives in the
// process: with several portal replicas each enforces its own budget.
type limiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
	now      func() time.Time
}

func newLimiter() *limiter { return &limiter{failures: map[string][]time.Time{}, now: time.Now} }

// recent returns how many failures key has had within window and when the
// last one was.
func (l *limiter) recent(key string, window time.Duration) (int, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.prune(key, l.now(), window)
	if len(fs) == 0 {
		return 0, time.Time{}
	}
	return len(fs), fs[len(fs)-1]
}

// blocked reports whether key has had max failures within window, and how
// long until the oldest of them ages out.
func (l *limiter) blocked(key string, max int, window time.Duration) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	fs := l.prune(key, now, window)
	if len(fs) < max {
		return false, 0
	}
	return true, fs[0].Add(window).Sub(now)
}

func (l *limiter) fail(key string, window time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.failures[key] = append(l.prune(key, now, window), now)
	if len(l.failures) > 100_000 {
		// Bound memory under a spray of distinct keys: forget the lot.
		l.failures = map[string][]time.Time{}
	}
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

func (l *limiter) prune(key string, now time.Time, window time.Duration) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) > window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = fs
	return fs
}
