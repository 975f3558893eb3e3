package gateway

import (
	"fmt"
	"sync"
	"time"
)

// limiter keeps unauthenticated clients from piling up: caps on connections
// at once, overall and per source address, and a sliding window of failed
// logins per source address.
type limiter struct {
	maxConns, maxPerIP, maxFailures int
	window                          time.Duration
	now                             func() time.Time

	mu       sync.Mutex
	total    int
	conns    map[string]int
	failures map[string][]time.Time // oldest first, within the window
}

func newLimiter(maxConns, maxPerIP, maxFailures int, window time.Duration) *limiter {
	return &limiter{maxConns: maxConns, maxPerIP: maxPerIP, maxFailures: maxFailures, window: window,
		now: time.Now, conns: map[string]int{}, failures: map[string][]time.Time{}}
}

// admit takes a connection slot for ip; why is non-empty when it is refused.
// release gives the slot back and must be called exactly once.
func (l *limiter) admit(ip string) (release func(), why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.maxConns:
		return nil, fmt.Sprintf("%d connections already open", l.total)
	case l.conns[ip] >= l.maxPerIP:
		return nil, fmt.Sprintf("%d connections already open from this address", l.conns[ip])
	case len(l.recent(ip)) >= l.maxFailures:
		return nil, fmt.Sprintf("%d failed logins from this address in the last %s", len(l.failures[ip]), l.window)
	}
	l.total++
	l.conns[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.conns[ip]--; l.conns[ip] <= 0 {
				delete(l.conns, ip)
			}
		})
	}, ""
}

// fail counts a failed login from ip.
func (l *limiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.recent(ip)
	if len(f) >= l.maxFailures {
		f = f[1:] // only the newest maxFailures matter
	}
	l.failures[ip] = append(f, l.now())
}

// recent drops ip's failures that left the window; l.mu is held.
func (l *limiter) recent(ip string) []time.Time {
	f := l.failures[ip]
	cut := l.now().Add(-l.window)
	i := 0
	for i < len(f) && !f[i].After(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, ip)
		return nil
	}
	l.failures[ip] = f
	return f
}

// sweep forgets addresses whose failures all left the window.
func (l *limiter) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip := range l.failures {
		l.recent(ip)
	}
}
