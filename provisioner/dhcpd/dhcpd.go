// Package dhcpd is the boot stack's DHCPv4 server: it leases addresses from
// the database's boot subnets (durable leases) and points PXE, UEFI, HTTP
// boot and iPXE clients at the right boot file. It answers only for the boot
// subnets staff configured, directly on its interface or through a relay, and
// stays silent everywhere else.
//
// Load test against it (and, in the same script, Kea and dnsmasq) from a
// second network namespace across a veth pair; perfdhcp acts as a relay, so
// it exercises the giaddr path:
//
//	ip netns exec load perfdhcp -4 -l <veth> -r 2000 -p 10 -R 5000
package dhcpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Config is how the server behaves.
type Config struct {
	// Interface is the network interface the server answers on; Listen
	// binds to it, so requests from other interfaces never arrive.
	Interface string
	// ServerIP is the server's address on Interface: the server identifier
	// (option 54) and the address whose boot subnet direct (unrelayed)
	// requests are served from. Taken from Interface when unset.
	ServerIP netip.Addr
	// TFTPServer serves undionly.kpxe and ipxe.efi; ServerIP when unset.
	TFTPServer netip.Addr
	// HTTPBootURL is the base URL of the HTTP boot service, e.g.
	// http://10.213.0.1:8080/boot: iPXE gets <HTTPBootURL>/ipxe/<mac>,
	// UEFI HTTP boot <HTTPBootURL>/ipxe.efi.
	HTTPBootURL string
	// Workers is how many requests are handled at once; 2×GOMAXPROCS when 0.
	Workers int
	// Refresh is how often the boot subnets are reread; 30 s when 0.
	Refresh time.Duration
}

// Backend is what the server needs from the database; *store.Store is one.
type Backend interface {
	ListBootSubnets(ctx context.Context) ([]store.BootSubnet, error)
	// LeaseFrom leases as store.Store.Lease does; from is where the search
	// for a new MAC's address starts (a hint the server keeps per subnet).
	LeaseFrom(ctx context.Context, subnetID, mac string, requested, from netip.Addr, now time.Time) (store.Lease, error)
	Release(ctx context.Context, subnetID, mac string) error
	Decline(ctx context.Context, subnetID, mac string, ip netip.Addr, now time.Time) error
	RecordDiscovered(ctx context.Context, mac, subnetID, vendorClass string, arch int, userClass string) error
}

// Server answers DHCP requests on one packet connection.
type Server struct {
	cfg     Config
	handler *Handler
	log     *slog.Logger
}

// New checks cfg, reads the boot subnets once and returns a server.
func New(ctx context.Context, cfg Config, backend Backend, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dhcpd")
	if !cfg.ServerIP.IsValid() {
		ip, err := interfaceIPv4(cfg.Interface)
		if err != nil {
			return nil, err
		}
		cfg.ServerIP = ip
	}
	cfg.ServerIP = cfg.ServerIP.Unmap()
	if !cfg.ServerIP.Is4() || cfg.ServerIP.IsUnspecified() {
		return nil, fmt.Errorf("dhcpd: server address %s is not a unicast IPv4 address", cfg.ServerIP)
	}
	if !cfg.TFTPServer.IsValid() {
		cfg.TFTPServer = cfg.ServerIP
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	h, err := newHandler(cfg, backend, log)
	if err != nil {
		return nil, err
	}
	if err := h.Refresh(ctx); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, handler: h, log: log}, nil
}

func interfaceIPv4(name string) (netip.Addr, error) {
	if name == "" {
		return netip.Addr{}, errors.New("dhcpd: neither a server address nor an interface is configured")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("dhcpd: %w", err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("dhcpd: addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("dhcpd: interface %s has no IPv4 address", name)
}

// Handler is the server's request handler, for tests and benchmarks.
func (s *Server) Handler() *Handler { return s.handler }

// Listen opens the server socket: UDP port 67 on all addresses, bound to
// iface so that only requests arriving on it are seen. server4 sets
// SO_REUSEPORT, so a second server on the same port does not fail here.
func Listen(iface string) (net.PacketConn, error) {
	conn, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("dhcpd: listen on %s: %w", iface, err)
	}
	growReadBuffer(conn)
	return conn, nil
}

// readBuffer is the socket receive buffer asked for: a burst (a rack
// powering on) or a database stall of a few hundred milliseconds then waits
// in the kernel instead of being dropped there.
const readBuffer = 4 << 20

// growReadBuffer raises the receive buffer, past net.core.rmem_max when
// privileged (SO_RCVBUFFORCE); a smaller buffer is no reason to fail.
func growReadBuffer(conn *net.UDPConn) {
	if rc, err := conn.SyscallConn(); err == nil {
		var serr error
		_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer) })
		if serr == nil {
			return
		}
	}
	_ = conn.SetReadBuffer(readBuffer)
}

// Serve answers requests on conn until ctx is cancelled, then closes conn.
// A fixed set of workers reads from conn, so a flood queues in the kernel
// (and is dropped there) instead of growing goroutines without bound.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	s.log.InfoContext(ctx, "serving DHCP", "interface", s.cfg.Interface, "server_ip", s.cfg.ServerIP.String(), "local", conn.LocalAddr().String())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, s.cfg.Workers)
	for range s.cfg.Workers {
		wg.Go(func() {
			if err := s.work(ctx, conn); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Go(func() {
		// While the database is out the subnets read last stay in force.
		rereads := &backoff.Loop{Base: s.cfg.Refresh, What: "rereading boot subnets", Log: s.log}
		wait := s.cfg.Refresh
		for backoff.Sleep(ctx, wait) {
			err := s.handler.Refresh(ctx)
			if ctx.Err() == nil {
				wait = rereads.Next(ctx, err)
			}
		}
	})
	<-ctx.Done()
	cerr := conn.Close()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		return fmt.Errorf("dhcpd: close: %w", cerr)
	}
	return nil
}

func (s *Server) work(ctx context.Context, conn net.PacketConn) error {
	buf := make([]byte, 1<<16)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("dhcpd: read: %w", err)
		}
		reply, dst := s.handler.HandlePacket(ctx, buf[:n], peer)
		if reply == nil {
			continue
		}
		if _, err := conn.WriteTo(reply, dst); err != nil {
			// One unreachable relay must not stop the server.
			s.log.WarnContext(ctx, "send reply", "to", dst.String(), "err", err)
		}
	}
}
