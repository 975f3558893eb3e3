package dhcpd_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/fibrixcloud/fibrix/provisioner/dhcpd"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// BenchmarkDORASQLite measures leases per second through the handler with
// durable leases in SQLite: "new" gives every iteration a new MAC (an
// allocation), "renew" cycles 256 MACs that already hold leases. Besides
// the wall-clock rate it reports this process's CPU time per lease, which a
// busy shared box disturbs much less.
func BenchmarkDORASQLite(b *testing.B) {
	benchDORA(b, func(b testing.TB) string { return filepath.Join(b.TempDir(), "fibrix.db") })
}

// BenchmarkDORAPostgres is BenchmarkDORASQLite on a throwaway PostgreSQL
// (the server's CPU is not in cpu-µs/lease, only ours).
func BenchmarkDORAPostgres(b *testing.B) {
	benchDORA(b, pgtest.DSN)
}

func benchDORA(b *testing.B, dsn func(testing.TB) string) {
	for _, mode := range []string{"new", "renew"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, dsn(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := st.CreateBootSubnet(ctx, store.Actor{}, store.BootSubnetInput{Name: "rack", CIDR: "10.0.0.0/8",
				DynamicStart: "10.0.0.10", DynamicEnd: "10.255.255.250"}); err != nil {
				b.Fatal(err)
			}
			h := newHandler(b, st, netip.MustParseAddr("10.0.0.1"))
			hw := func(i int) net.HardwareAddr {
				if mode == "renew" {
					i %= 256
				}
				return net.HardwareAddr{0x52, 0x54, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
			}
			dora := func(i int) {
				offer, _ := h.Handle(ctx, discover(hw(i)))
				if offer == nil {
					b.Fatal("no offer")
				}
				req, _ := dhcpv4.NewRequestFromOffer(offer)
				if ack, _ := h.Handle(ctx, req); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
					b.Fatalf("no ack: %v", ack)
				}
			}
			if mode == "renew" {
				for i := range 256 {
					dora(i)
				}
			}
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				dora(i)
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leases/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/lease")
		})
	}
}

// cpuTime is the user plus system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var _ dhcpd.Backend = (*store.Store)(nil)
