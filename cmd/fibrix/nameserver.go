package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// dnsFlags are the settings of the authoritative name server.
type dnsFlags struct {
	listen      string
	ns          string
	wan         string
	lan         string
	secondaries string
	notify      string
	recursion   bool
	upstreams   string
	ttl         time.Duration
	rrlRate     int
	rrlSlip     int
	rrlExempt   string
}

func (d *dnsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.listen, "dns-listen", "127.0.0.1:5353", "address of the authoritative DNS server, UDP and TCP (empty: off)")
	fs.StringVar(&d.ns, "dns-ns", "", "name servers of the zone, comma-separated (default: ns1.<zone>)")
	fs.StringVar(&d.wan, "dns-wan-address", "", "the public address answered to WAN clients for VM names")
	fs.StringVar(&d.lan, "dns-lan-networks", "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16", "source networks that get private answers, comma-separated")
	fs.StringVar(&d.secondaries, "dns-secondaries", "", "networks allowed to transfer the zone (AXFR), comma-separated")
	fs.StringVar(&d.notify, "dns-notify", "", "secondaries told about new serials, host:port comma-separated")
	fs.DurationVar(&d.ttl, "dns-ttl", 5*time.Minute, "TTL of VM, SOA and NS records and of negative answers (1s to 1 day)")
	fs.BoolVar(&d.recursion, "dns-recursion", false, "answer other names for LAN clients through --dns-upstreams")
	fs.StringVar(&d.upstreams, "dns-upstreams", "", "resolvers for LAN recursion, host:port comma-separated")
	fs.IntVar(&d.rrlRate, "dns-rrl-rate", 10, "response-rate limit: UDP answers per second of one kind (name and type, NXDOMAIN per zone, errors) to one /24 or /56 outside --dns-lan-networks; 0 turns it off")
	fs.IntVar(&d.rrlSlip, "dns-rrl-slip", 2, "every Nth answer over --dns-rrl-rate is sent truncated so real resolvers retry over TCP, the others are dropped; 0 drops them all (at most 10)")
	fs.StringVar(&d.rrlExempt, "dns-rrl-exempt", "", "more source networks never rate-limited, comma-separated (LAN networks never are)")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func prefixes(flagName, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(s) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a network like 10.0.0.0/8", flagName, f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// startNameserver serves the region zone from the database in g.
func startNameserver(ctx context.Context, g *errgroup.Group, st *store.Store, d dnsFlags, zone string, log *slog.Logger) error {
	if d.listen == "" {
		return nil
	}
	fqdn := strings.TrimSuffix(zone, ".") + "."
	if d.ttl < time.Second || d.ttl > 24*time.Hour {
		return fmt.Errorf("--dns-ttl: %s is outside 1s to 24h", d.ttl)
	}
	cfg := nameserver.Config{Zone: fqdn, NS: splitList(d.ns), Notify: splitList(d.notify), Recursion: d.recursion,
		Upstreams: splitList(d.upstreams), TTL: uint32(d.ttl / time.Second)}
	if len(cfg.NS) == 0 {
		cfg.NS = []string{"ns1." + fqdn}
	}
	if d.wan != "" {
		a, err := netip.ParseAddr(d.wan)
		if err != nil {
			return fmt.Errorf("--dns-wan-address: %q is not an IP address", d.wan)
		}
		cfg.WANAddress = a
	}
	var err error
	if cfg.LANNetworks, err = prefixes("dns-lan-networks", d.lan); err != nil {
		return err
	}
	if cfg.SecondaryACL, err = prefixes("dns-secondaries", d.secondaries); err != nil {
		return err
	}
	if d.rrlRate < 0 || d.rrlSlip < 0 {
		return fmt.Errorf("--dns-rrl-rate and --dns-rrl-slip must not be negative")
	}
	cfg.RRL = nameserver.RateLimit{Rate: d.rrlRate, Slip: d.rrlSlip}
	if d.rrlSlip == 0 {
		cfg.RRL.Slip = -1 // the flag's 0 means none, as in BIND
	}
	if cfg.RRL.Exempt, err = prefixes("dns-rrl-exempt", d.rrlExempt); err != nil {
		return err
	}
	srv, err := nameserver.New(cfg, nameserver.StoreSource(st), log.With("component", "dns"))
	if err != nil {
		return err
	}
	pc, ln, err := nameserver.Listen(d.listen)
	if err != nil {
		return fmt.Errorf("dns: listen on %s: %w", d.listen, err)
	}
	g.Go(func() error { return srv.Serve(ctx, pc, ln) })
	log.Info("dns serving", "listen", d.listen, "zone", fqdn, "rrl_rate", d.rrlRate)
	return nil
}
