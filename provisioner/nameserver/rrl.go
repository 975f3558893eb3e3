package nameserver

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Response-rate limiting (RRL), as BIND, Knot and NSD do it: a UDP source
// address can be forged, so a server that answers every query can be made
// to flood a victim with answers bigger than the queries. Answers to one
// source network are accounted per kind of answer in token buckets; over
// the limit most are dropped and every Slip-th goes out empty with TC=1, so
// a real resolver behind that address retries over TCP and gets its answer
// (TCP cannot be spoofed and is never limited).

// RateLimit configures RRL for UDP answers to sources outside LANNetworks.
type RateLimit struct {
	// Rate is the answers per second of one kind to one source network:
	// the same name and type, NXDOMAIN within one zone, or errors
	// (REFUSED, FORMERR …). An answer more than twice as big as its query
	// spends two. 0 turns the limit off.
	Rate int
	// Burst is what a quiet bucket allows at once; default Rate.
	Burst int
	// Slip: every Slip-th answer over the limit is sent truncated and
	// empty; the others are dropped. Default 2; negative drops them all.
	Slip int
	// IPv4Prefix and IPv6Prefix group sources into networks; default 24
	// and 56.
	IPv4Prefix, IPv6Prefix int
	// Exempt networks are never limited (LANNetworks never are either).
	Exempt []netip.Prefix
	// MaxTable bounds the buckets kept; when full, the least recently used
	// is forgotten, so forged sources cannot grow the table. Default 20000.
	MaxTable int
}

func (c *RateLimit) validate() error {
	switch {
	case c.Rate < 0:
		return errors.New("dns rate limit: rate must not be negative")
	case c.Rate == 0:
		return nil
	case c.Burst < 0:
		return errors.New("dns rate limit: burst must not be negative")
	case c.Slip > 10:
		return fmt.Errorf("dns rate limit: slip %d is more than 10", c.Slip)
	case c.IPv4Prefix < 0 || c.IPv4Prefix > 32:
		return fmt.Errorf("dns rate limit: IPv4 prefix /%d is not 1 to 32", c.IPv4Prefix)
	case c.IPv6Prefix < 0 || c.IPv6Prefix > 128:
		return fmt.Errorf("dns rate limit: IPv6 prefix /%d is not 1 to 128", c.IPv6Prefix)
	case c.MaxTable < 0:
		return errors.New("dns rate limit: table size must not be negative")
	}
	if c.Burst == 0 {
		c.Burst = c.Rate
	}
	if c.Slip == 0 {
		c.Slip = 2
	}
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix = 24
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = 56
	}
	if c.MaxTable == 0 {
		c.MaxTable = 20000
	}
	for i, p := range c.Exempt {
		if !p.IsValid() {
			return fmt.Errorf("dns rate limit: exempt network %d is not valid", i)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96) // sources are unmapped
		}
		c.Exempt[i] = p.Masked()
	}
	return nil
}

// rrlClass is the kind of answer a bucket counts.
type rrlClass uint8

const (
	rrlAnswer   rrlClass = iota // NOERROR, with data or not: per name and type
	rrlNXDomain                 // per zone, so random names share one bucket
	rrlError                    // anything else: one bucket per network
)

func (c rrlClass) String() string {
	return [...]string{"answer", "nxdomain", "error"}[c]
}

// verdict is what to do with one answer.
type verdict uint8

const (
	rrlSend verdict = iota
	rrlSlip         // send it truncated and empty
	rrlDrop
)

const rrlShards = 8

type rrlEntry struct {
	key     uint64 // seeded hash of network, class, type and name: in practice unique
	tokens  float64
	last    int64  // clock reading of the last refill
	limited uint32 // answers over the limit since the bucket was last full
	// LRU list by slot number, -1 at either end.
	prev, next int32
}

// rrlShard is a bounded LRU table of buckets; slots are reused, so a full
// table no longer allocates.
type rrlShard struct {
	mu         sync.Mutex
	index      map[uint64]int32
	entries    []rrlEntry
	head, tail int32 // most and least recently used
	_          [64]byte
}

// limiter holds the buckets. It is safe for concurrent use: the UDP read
// loop and the full handler's goroutines share it.
type limiter struct {
	perNano  float64 // tokens per nanosecond
	burst    float64
	slip     uint32
	v4, v6   int
	exempt   []netip.Prefix
	perShard int
	seed     maphash.Seed
	log      *slog.Logger
	rate     int

	now   func() time.Time
	epoch time.Time

	// Starting to limit is logged at most once a second.
	lastLog    atomic.Int64
	suppressed atomic.Int64

	shards [rrlShards]rrlShard
}

func newLimiter(c RateLimit, log *slog.Logger) *limiter {
	l := &limiter{perNano: float64(c.Rate) / 1e9, burst: float64(c.Burst), v4: c.IPv4Prefix, v6: c.IPv6Prefix,
		exempt: c.Exempt, perShard: max(1, c.MaxTable/rrlShards), seed: maphash.MakeSeed(), log: log, rate: c.Rate}
	if c.Slip > 0 {
		l.slip = uint32(c.Slip)
	}
	for i := range l.shards {
		l.shards[i].index = make(map[uint64]int32)
		l.shards[i].head, l.shards[i].tail = -1, -1
	}
	l.setClock(time.Now)
	l.lastLog.Store(-int64(time.Hour))
	return l
}

// setClock replaces the clock; only before the limiter is in use.
func (l *limiter) setClock(now func() time.Time) {
	l.now, l.epoch = now, now()
}

func (l *limiter) exempts(src netip.Addr) bool {
	for _, p := range l.exempt {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// check spends cost from the bucket of (src's network, class, qtype,
// name) and says whether the answer goes out. name is the lower-case wire
// name for answers, the zone's for NXDOMAIN, nil for errors.
func (l *limiter) check(src netip.Addr, class rrlClass, qtype uint16, name []byte, cost float64) verdict {
	bits := l.v6
	if src.Is4() {
		bits = l.v4
	}
	p, err := src.Prefix(bits)
	if err != nil {
		return rrlSend
	}
	// One seeded hash of it all is the key: forged queries cannot aim at
	// another network's bucket.
	var b [16 + 3 + 255]byte
	*(*[16]byte)(b[:]) = p.Addr().As16()
	b[16], b[17], b[18] = byte(class), byte(qtype>>8), byte(qtype)
	k := maphash.Bytes(l.seed, b[:19+copy(b[19:], name)])
	cost = min(cost, l.burst) // a bucket smaller than one large answer still lets some out
	now := int64(l.now().Sub(l.epoch))
	sh := &l.shards[k>>61] // top 3 bits: rrlShards == 8
	sh.mu.Lock()
	e := sh.get(k, now, l.burst, l.perShard)
	if d := now - e.last; d > 0 {
		e.tokens = min(l.burst, e.tokens+float64(d)*l.perNano)
		e.last = now
		if e.tokens >= l.burst {
			e.limited = 0 // quiet long enough: a new episode logs again
		}
	}
	if e.tokens >= cost {
		e.tokens -= cost
		sh.mu.Unlock()
		return rrlSend
	}
	e.limited++
	n := e.limited
	sh.mu.Unlock()
	if n == 1 {
		l.logStart(now, p, class)
	}
	if l.slip > 0 && n%l.slip == 0 {
		return rrlSlip
	}
	return rrlDrop
}

func (l *limiter) logStart(now int64, p netip.Prefix, class rrlClass) {
	last := l.lastLog.Load()
	if now-last < int64(time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	l.log.Info("dns rate limit: limiting answers to a source network", "network", p.String(), "class", class.String(),
		"rate", l.rate, "others_since_last_log", l.suppressed.Swap(0))
}

// get returns the bucket for k, most recently used from now on; a new one
// is full, taking the least recently used slot when the shard is full.
func (sh *rrlShard) get(k uint64, now int64, burst float64, limit int) *rrlEntry {
	if i, ok := sh.index[k]; ok {
		sh.touch(i)
		return &sh.entries[i]
	}
	var i int32
	if len(sh.entries) < limit {
		i = int32(len(sh.entries))
		sh.entries = append(sh.entries, rrlEntry{prev: -1, next: -1})
	} else {
		i = sh.tail
		delete(sh.index, sh.entries[i].key)
		sh.unlink(i)
	}
	sh.entries[i] = rrlEntry{key: k, tokens: burst, last: now, prev: -1, next: -1}
	sh.index[k] = i
	sh.pushFront(i)
	return &sh.entries[i]
}

func (sh *rrlShard) touch(i int32) {
	if sh.head == i {
		return
	}
	sh.unlink(i)
	sh.pushFront(i)
}

func (sh *rrlShard) unlink(i int32) {
	e := &sh.entries[i]
	if e.prev >= 0 {
		sh.entries[e.prev].next = e.next
	} else {
		sh.head = e.next
	}
	if e.next >= 0 {
		sh.entries[e.next].prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (sh *rrlShard) pushFront(i int32) {
	e := &sh.entries[i]
	e.prev, e.next = -1, sh.head
	if sh.head >= 0 {
		sh.entries[sh.head].prev = i
	}
	sh.head = i
	if sh.tail < 0 {
		sh.tail = i
	}
}

// size is the number of buckets held.
func (l *limiter) size() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].index)
		l.shards[i].mu.Unlock()
	}
	return n
}

// answerCost is what an answer of reply bytes to a query of query bytes
// spends: amplifying answers count double.
func answerCost(query, reply int) float64 {
	if reply > 2*query {
		return 2
	}
	return 1
}
