package nameserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// manualClock moves only when told.
type manualClock struct{ ns atomic.Int64 }

func (c *manualClock) now() time.Time          { return time.Unix(1700000000, c.ns.Load()) }
func (c *manualClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func testLimiter(t *testing.T, c RateLimit) (*limiter, *manualClock) {
	t.Helper()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	l := newLimiter(c, slog.New(slog.DiscardHandler))
	clk := &manualClock{}
	l.setClock(clk.now)
	return l, clk
}

// w stands for a wire name.
func w(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// verdicts is n checks of one bucket, as a string: s send, t slip, . drop.
func verdicts(l *limiter, src string, n int, cost float64) string {
	var b strings.Builder
	for range n {
		b.WriteByte("st."[l.check(netip.MustParseAddr(src), rrlAnswer, 1, []byte("a"), cost)])
	}
	return b.String()
}

func TestLimiterBucket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   RateLimit
		steps []any // int: that many checks (cost 1) appended to got; time.Duration: advance
		want  string
	}{
		{"burst then slip every other", RateLimit{Rate: 10}, []any{16}, "ssssssssss.t.t.t"},
		{"refill at the rate", RateLimit{Rate: 10}, []any{12, 100 * time.Millisecond, 3}, "ssssssssss.t" + "s.t"},
		{"a quiet second refills the burst", RateLimit{Rate: 10}, []any{12, 5 * time.Second, 12}, "ssssssssss.t" + "ssssssssss.t"},
		{"burst larger than rate", RateLimit{Rate: 2, Burst: 5}, []any{7, 500 * time.Millisecond, 2}, "sssss.t" + "s."},
		{"slip 1 truncates all", RateLimit{Rate: 2, Slip: 1}, []any{5}, "ssttt"},
		{"slip 3", RateLimit{Rate: 2, Slip: 3}, []any{8}, "ss..t..t"},
		{"negative slip drops all", RateLimit{Rate: 2, Slip: -1}, []any{5}, "ss..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, clk := testLimiter(t, tc.cfg)
			var got string
			for _, s := range tc.steps {
				switch s := s.(type) {
				case int:
					got += verdicts(l, "198.51.100.7", s, 1)
				case time.Duration:
					clk.advance(s)
				}
			}
			if got != tc.want {
				t.Errorf("verdicts %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimiterLargeAnswersCostMore(t *testing.T) {
	if answerCost(50, 100) != 1 || answerCost(50, 101) != 2 {
		t.Fatalf("cost of 100 and 101 bytes for 50: %v %v", answerCost(50, 100), answerCost(50, 101))
	}
	l, _ := testLimiter(t, RateLimit{Rate: 10})
	if got := verdicts(l, "198.51.100.7", 8, answerCost(50, 900)); got != "sssss.t." {
		t.Errorf("large answers: %q, want half the burst", got)
	}
	// A bucket smaller than one large answer still lets some out.
	l, _ = testLimiter(t, RateLimit{Rate: 1})
	if got := verdicts(l, "198.51.100.7", 3, 2); got != "s.t" {
		t.Errorf("burst 1, cost 2: %q", got)
	}
}

// TestLimiterBuckets shows what shares a bucket: one source network, one
// class, one name and type.
func TestLimiterBuckets(t *testing.T) {
	type ask struct {
		src   string
		class rrlClass
		qtype uint16
		name  uint64
	}
	base := ask{"198.51.100.7", rrlAnswer, 1, 42}
	for _, tc := range []struct {
		name   string
		other  ask
		shared bool
	}{
		{"same /24", ask{"198.51.100.200", rrlAnswer, 1, 42}, true},
		{"other /24", ask{"198.51.101.7", rrlAnswer, 1, 42}, false},
		{"other type", ask{"198.51.100.7", rrlAnswer, 28, 42}, false},
		{"other name", ask{"198.51.100.7", rrlAnswer, 1, 43}, false},
		{"nxdomain apart", ask{"198.51.100.7", rrlNXDomain, 1, 42}, false},
		{"errors apart", ask{"198.51.100.7", rrlError, 1, 42}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := testLimiter(t, RateLimit{Rate: 3, Slip: -1})
			for range 3 {
				l.check(netip.MustParseAddr(base.src), base.class, base.qtype, w(base.name), 1)
			}
			v := l.check(netip.MustParseAddr(tc.other.src), tc.other.class, tc.other.qtype, w(tc.other.name), 1)
			if got := v != rrlSend; got != tc.shared {
				t.Errorf("limited by the other bucket: %v, want %v", got, tc.shared)
			}
		})
	}
	l, _ := testLimiter(t, RateLimit{Rate: 1, Slip: -1})
	for _, tc := range []struct {
		src  string
		send bool
	}{{"2001:db8:1:100::1", true}, {"2001:db8:1:1ff::2", false}, {"2001:db8:1:200::1", true}, {"::ffff:198.51.100.7", true}} {
		src := netip.MustParseAddr(tc.src).Unmap()
		if got := l.check(src, rrlAnswer, 1, w(42), 1) == rrlSend; got != tc.send {
			t.Errorf("%s (IPv6 /56): sent %v, want %v", tc.src, got, tc.send)
		}
	}
}

// TestLimiterTableBounded forges many sources: the table stays at its cap
// and a source being limited all along is not forgotten.
func TestLimiterTableBounded(t *testing.T) {
	l, _ := testLimiter(t, RateLimit{Rate: 5, Slip: -1, MaxTable: 1000})
	victim := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		l.check(victim, rrlAnswer, 1, w(1), 1)
	}
	for i := range 200000 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.check(src, rrlAnswer, 1, w(uint64(i)), 1)
		if i%50 == 0 {
			if v := l.check(victim, rrlAnswer, 1, w(1), 1); v != rrlDrop {
				t.Fatalf("after %d forged sources the victim's bucket was forgotten", i)
			}
		}
	}
	if n := l.size(); n > 1000 || n < 900 {
		t.Errorf("table holds %d buckets, want at most 1000 and near it", n)
	}
	for i := range l.shards {
		sh := &l.shards[i]
		if len(sh.entries) > l.perShard || len(sh.index) != len(sh.entries) {
			t.Errorf("shard %d: %d slots, %d indexed, cap %d", i, len(sh.entries), len(sh.index), l.perShard)
		}
	}
}

// TestLimiterConcurrent spends one bucket from many goroutines with the
// clock standing still: exactly the burst goes out.
func TestLimiterConcurrent(t *testing.T) {
	l, _ := testLimiter(t, RateLimit{Rate: 50, Slip: -1, MaxTable: 1 << 16})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				if l.check(netip.MustParseAddr("198.51.100.9"), rrlAnswer, 1, w(7), 1) == rrlSend {
					sent.Add(1)
				}
				l.check(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), rrlError, 0, nil, 1)
			}
		})
	}
	wg.Wait()
	if sent.Load() != 50 {
		t.Errorf("%d answers sent, want the burst of 50", sent.Load())
	}
}

// recordingHandler keeps the messages logged.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, b.String())
	return nil
}

// TestLimiterLogsOncePerStart logs when a bucket starts limiting, not per
// answer, and at most once a second.
func TestLimiterLogsOncePerStart(t *testing.T) {
	h := &recordingHandler{}
	c := RateLimit{Rate: 2}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	l := newLimiter(c, slog.New(h))
	clk := &manualClock{}
	l.setClock(clk.now)
	a, b := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	for range 100 {
		l.check(a, rrlNXDomain, 0, w(1), 1)
	}
	for range 100 {
		l.check(b, rrlAnswer, 1, w(1), 1) // within the same second: counted, not logged
	}
	clk.advance(2 * time.Second)
	for range 100 {
		l.check(a, rrlNXDomain, 0, w(1), 1) // refilled: a new episode
	}
	want := []string{
		"INFO dns rate limit: limiting answers to a source network network=198.51.100.0/24 class=nxdomain rate=2 others_since_last_log=0",
		"INFO dns rate limit: limiting answers to a source network network=198.51.100.0/24 class=nxdomain rate=2 others_since_last_log=1",
	}
	if diff := cmp.Diff(want, h.msgs); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestRateLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RateLimit
		want RateLimit
		err  string
	}{
		{"off", RateLimit{}, RateLimit{}, ""},
		{"defaults", RateLimit{Rate: 10}, RateLimit{Rate: 10, Burst: 10, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, MaxTable: 20000}, ""},
		{"exempt normalised", RateLimit{Rate: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("::ffff:192.0.2.9/120"), netip.MustParsePrefix("198.51.100.9/24")}},
			RateLimit{Rate: 1, Burst: 1, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, MaxTable: 20000,
				Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24")}}, ""},
		{"negative rate", RateLimit{Rate: -1}, RateLimit{}, "rate must not be negative"},
		{"negative burst", RateLimit{Rate: 1, Burst: -1}, RateLimit{}, "burst"},
		{"slip", RateLimit{Rate: 1, Slip: 11}, RateLimit{}, "slip 11"},
		{"v4 prefix", RateLimit{Rate: 1, IPv4Prefix: 33}, RateLimit{}, "IPv4 prefix"},
		{"v6 prefix", RateLimit{Rate: 1, IPv6Prefix: 129}, RateLimit{}, "IPv6 prefix"},
		{"table", RateLimit{Rate: 1, MaxTable: -5}, RateLimit{}, "table size"},
		{"bad exempt", RateLimit{Rate: 1, Exempt: []netip.Prefix{{}}}, RateLimit{}, "exempt network 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("validated (-want +got):\n%s", diff)
			}
		})
	}
}
