package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/provisioner/dhcpd"
	"github.com/fibrixcloud/fibrix/provisioner/netboot"
	"github.com/fibrixcloud/fibrix/provisioner/rack"
	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/provisioner/tftpd"
)

// bootFlags are the settings of the PXE boot stack (DHCP, TFTP, HTTP boot)
// that runs on one rack interface.
type bootFlags struct {
	iface      string
	serverIP   string
	tftpListen string
	tftpRoot   string
	httpListen string
	kernel     string
	initrd     string
	images     string
	agentURL   string
	refresh    time.Duration
}

func (b *bootFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.iface, "boot-interface", "", "network interface of the rack network machines PXE-boot on (empty: no boot stack)")
	fs.StringVar(&b.serverIP, "boot-server-ip", "", "this server's IPv4 address on --boot-interface (default: the interface's first IPv4 address)")
	fs.StringVar(&b.tftpListen, "tftp-listen", "", "address of the TFTP server for the iPXE binaries (default: <boot-server-ip>:69)")
	fs.StringVar(&b.tftpRoot, "tftp-root", tftpd.DefaultRoot, "directory of the iPXE binaries (Debian package ipxe)")
	fs.StringVar(&b.httpListen, "boot-http-listen", "", "address of the HTTP boot service (default: <boot-server-ip>:8082)")
	fs.StringVar(&b.kernel, "boot-kernel", "out/agent/vmlinuz", "kernel of the commissioning environment")
	fs.StringVar(&b.initrd, "boot-initrd", "out/agent/initrd.img", "initramfs of the commissioning environment (with the agent)")
	fs.StringVar(&b.images, "boot-images", "", "directory of the OS images machines deploy (empty: none)")
	fs.DurationVar(&b.refresh, "boot-subnet-refresh", 30*time.Second, "how often the DHCP server rereads the boot subnets and reservations")
	fs.StringVar(&b.agentURL, "agent-url", "", "URL of the portal that boot agents' reports are relayed to (default: http://<boot-server-ip>:<port of --listen>)")
}

// bootPlan is the boot stack's checked configuration.
type bootPlan struct {
	iface      string
	serverIP   netip.Addr
	tftpListen string
	tftpRoot   string
	httpListen string
	agentURL   *url.URL
	refresh    time.Duration
	netboot    netboot.Config
}

// plan checks the flags; portalListen is --listen, whose port is the
// default agent URL's. A disabled boot stack is (nil, nil).
func (b bootFlags) plan(portalListen string) (*bootPlan, error) {
	if b.iface == "" {
		return nil, nil
	}
	ifc, err := net.InterfaceByName(b.iface)
	if err != nil {
		return nil, fmt.Errorf("--boot-interface: there is no network interface %q on this machine", b.iface)
	}
	var own []netip.Addr
	if addrs, err := ifc.Addrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				own = append(own, p.Addr())
			}
		}
	}
	if b.refresh == 0 {
		b.refresh = 30 * time.Second
	}
	if b.refresh < time.Second || b.refresh > time.Hour {
		return nil, fmt.Errorf("--boot-subnet-refresh: %v is outside 1s–1h", b.refresh)
	}
	p := &bootPlan{iface: b.iface, tftpRoot: b.tftpRoot, refresh: b.refresh}
	if b.serverIP == "" {
		if len(own) == 0 {
			return nil, fmt.Errorf("--boot-interface: %s has no IPv4 address; give it one, or set --boot-server-ip", b.iface)
		}
		p.serverIP = own[0]
	} else {
		a, err := netip.ParseAddr(b.serverIP)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("--boot-server-ip: %q is not an IPv4 address", b.serverIP)
		}
		found := false
		for _, o := range own {
			found = found || o == a
		}
		if !found {
			return nil, fmt.Errorf("--boot-server-ip: %s is not an address of %s", a, b.iface)
		}
		p.serverIP = a
	}
	ip := p.serverIP.String()
	p.tftpListen = b.tftpListen
	if p.tftpListen == "" {
		p.tftpListen = net.JoinHostPort(ip, "69")
	}
	p.httpListen = b.httpListen
	if p.httpListen == "" {
		p.httpListen = net.JoinHostPort(ip, "8082")
	}
	host, _, err := net.SplitHostPort(p.httpListen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		// The address goes into DHCP answers and iPXE scripts.
		return nil, fmt.Errorf("--boot-http-listen: %q must be host:port with the address machines reach", p.httpListen)
	}
	agent := b.agentURL
	if agent == "" {
		_, port, err := net.SplitHostPort(portalListen)
		if err != nil {
			return nil, fmt.Errorf("--agent-url: cannot take the port from --listen %q; set --agent-url", portalListen)
		}
		agent = "http://" + net.JoinHostPort(ip, port)
	}
	u, err := url.Parse(strings.TrimRight(agent, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("--agent-url: %q is not an http(s) URL of the portal", agent)
	}
	p.agentURL = u
	p.netboot = netboot.Config{BaseURL: "http://" + p.httpListen + "/boot", KernelPath: b.kernel, InitrdPath: b.initrd, ImageDir: b.images}
	if err := p.netboot.Validate(); err != nil {
		return nil, fmt.Errorf("boot stack: %w", err)
	}
	return p, nil
}

// startBoot runs DHCP, TFTP and HTTP boot on the rack interface in g. The
// HTTP boot service also relays the boot agents' calls under
// /boot/api/agent/ to the portal, so that machines on the rack network
// need to reach only this server: the agent's fibrix.url is the boot URL.
func startBoot(ctx context.Context, g *errgroup.Group, st *store.Store, p *bootPlan, log *slog.Logger) error {
	log = log.With("component", "boot")
	httpBoot := p.netboot.BaseURL
	dh, err := dhcpd.New(ctx, dhcpd.Config{Interface: p.iface, ServerIP: p.serverIP, TFTPServer: p.serverIP, HTTPBootURL: httpBoot, Refresh: p.refresh}, st, log)
	if err != nil {
		return err
	}
	tf, err := tftpd.New(tftpd.Config{Root: p.tftpRoot, Require: []string{dhcpd.BIOSBootFile, dhcpd.UEFIBootFile}}, log)
	if err != nil {
		return err
	}
	dconn, err := dhcpd.Listen(p.iface)
	if err != nil {
		return err
	}
	tconn, err := net.ListenPacket("udp4", p.tftpListen)
	if err != nil {
		dconn.Close()
		return fmt.Errorf("tftp: listen on %s: %w", p.tftpListen, err)
	}
	hln, err := net.Listen("tcp", p.httpListen)
	if err != nil {
		dconn.Close()
		tconn.Close()
		return fmt.Errorf("http boot: listen on %s: %w", p.httpListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/boot/", netboot.New(p.netboot, rack.NewMachines(st), log))
	mux.Handle("/boot/api/agent/", agentRelay(p.agentURL, log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error { return dh.Serve(ctx, dconn) })
	g.Go(func() error { return tf.Serve(ctx, tconn) })
	g.Go(func() error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(hln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("http boot: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http boot: %w", err)
			}
			return nil
		}
	})
	log.Info("boot stack serving", "interface", p.iface, "server_ip", p.serverIP, "tftp", p.tftpListen, "http", httpBoot, "agent_url", p.agentURL.String())
	return nil
}

// agentRelay forwards /boot/api/agent/… to <agent>/api/agent/…, with the
// machine's address in X-Forwarded-For.
func agentRelay(agent *url.URL, log *slog.Logger) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(agent)
			r.Out.URL.Path = strings.TrimRight(agent.Path, "/") + strings.TrimPrefix(r.In.URL.Path, "/boot")
			r.Out.URL.RawPath = ""
			r.SetXForwarded()
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return http.MaxBytesHandler(rp, 16<<20)
}

// startMachineWorker runs the bare-metal worker (power commands, power
// polling, phase timeouts) in g.
func startMachineWorker(ctx context.Context, g *errgroup.Group, st *store.Store, log *slog.Logger) {
	w := rack.NewWorker(st, rack.Config{}, log.With("component", "machines"))
	g.Go(func() error { return w.Serve(ctx) })
}
