// Command benchserve runs one of our boot servers on its own for the
// side-by-side benchmarks in .ci/bench-dhcp.sh and .ci/bench-tftp.sh, which
// compare it with Kea, dnsmasq, tftpd-hpa and atftpd. It is a test driver,
// not a product command: it reads flags here only because the scripts need
// a process of ours to pin and measure.
//
//	benchserve dhcp -db FILE -iface vs -server-ip 10.213.0.1 -cidr 10.213.0.0/16 -start 10.213.1.0 -end 10.213.250.255
//	benchserve tftp -root DIR -listen 127.0.0.1:6969
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/fibrixcloud/fibrix/provisioner/dhcpd"
	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/provisioner/tftpd"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchserve dhcp|tftp [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	switch os.Args[1] {
	case "dhcp":
		err = serveDHCP(ctx, os.Args[2:], log)
	case "tftp":
		err = serveTFTP(ctx, os.Args[2:], log)
	default:
		err = fmt.Errorf("unknown server %q", os.Args[1])
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "benchserve:", err)
		os.Exit(1)
	}
}

func serveDHCP(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("dhcp", flag.ExitOnError)
	db := fs.String("db", "", "SQLite file or PostgreSQL DSN for the leases")
	iface := fs.String("iface", "", "interface to answer on")
	serverIP := fs.String("server-ip", "", "our address on the interface")
	cidr := fs.String("cidr", "", "boot subnet")
	start := fs.String("start", "", "first address of the dynamic range")
	end := fs.String("end", "", "last address of the dynamic range")
	_ = fs.Parse(args)
	st, err := store.Open(ctx, *db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	if _, err := st.GetBootSubnet(ctx, "bench"); errors.Is(err, store.ErrNotFound) {
		if _, err := st.CreateBootSubnet(ctx, store.Actor{Email: "bench@example.com"}, store.BootSubnetInput{
			Name: "bench", CIDR: *cidr, DynamicStart: *start, DynamicEnd: *end}); err != nil {
			return err
		}
	}
	ip, err := netip.ParseAddr(*serverIP)
	if err != nil {
		return fmt.Errorf("server address: %w", err)
	}
	srv, err := dhcpd.New(ctx, dhcpd.Config{Interface: *iface, ServerIP: ip}, st, log)
	if err != nil {
		return err
	}
	conn, err := dhcpd.Listen(*iface)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	return srv.Serve(ctx, conn)
}

func serveTFTP(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("tftp", flag.ExitOnError)
	root := fs.String("root", "", "directory to serve")
	listen := fs.String("listen", "127.0.0.1:6969", "UDP address to listen on")
	_ = fs.Parse(args)
	srv, err := tftpd.New(tftpd.Config{Root: *root, BlockSize: tftpd.DefaultBlockSize}, log)
	if err != nil {
		return err
	}
	conn, err := net.ListenPacket("udp4", *listen)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	return srv.Serve(ctx, conn)
}
