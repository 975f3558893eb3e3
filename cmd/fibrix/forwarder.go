package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/provisioner/forwarder"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// forwardFlags are the settings of the WAN-to-LAN forwarder.
type forwardFlags struct {
	httpListen string
	tlsListen  string
	portRange  string
	portHost   string
}

func (f *forwardFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.httpListen, "http-forward-listen", "127.0.0.1:8081", "public HTTP address routed to VMs by Host header (:80 in production; empty: off)")
	fs.StringVar(&f.tlsListen, "tls-forward-listen", "127.0.0.1:8443", "public HTTPS address passed through to VMs by TLS SNI (:443 in production; empty: off)")
	fs.StringVar(&f.portRange, "forward-ports", "20000-20999", "public TCP ports customers may forward to their VMs, as FIRST-LAST")
	fs.StringVar(&f.portHost, "forward-host", "127.0.0.1", "address the TCP port forwards listen on (the public address in production)")
}

// ports parses --forward-ports.
func (f *forwardFlags) ports() (int, int, error) {
	lo, hi, ok := strings.Cut(f.portRange, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("--forward-ports: %q is not a range like 20000-20999", f.portRange)
	}
	return a, b, nil
}

// startForwarder runs the HTTP, TLS and TCP front ends in g.
func startForwarder(ctx context.Context, g *errgroup.Group, st *store.Store, f forwardFlags, zone string, log *slog.Logger) error {
	lo, hi, err := f.ports()
	if err != nil {
		return err
	}
	fw, err := forwarder.New(forwarder.Config{Zone: zone, PortMin: lo, PortMax: hi, PortHost: f.portHost}, st, log.With("component", "forwarder"))
	if err != nil {
		return err
	}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, fe := range []struct {
		addr  string
		serve func(context.Context, net.Listener) error
	}{{f.httpListen, fw.HTTP().Serve}, {f.tlsListen, fw.TLS().Serve}} {
		if fe.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", fe.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("forwarder: listen on %s: %w", fe.addr, err)
		}
		lns = append(lns, ln)
		serve := fe.serve
		g.Go(func() error { return serve(ctx, ln) })
	}
	g.Go(func() error { return fw.Serve(ctx) })
	log.Info("forwarder running", "http", f.httpListen, "tls", f.tlsListen, "tcp_ports", f.portRange)
	return nil
}
