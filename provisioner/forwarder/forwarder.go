// Package forwarder carries the world's traffic from the ISP's one public
// address to the VMs on the LAN: HTTP by Host header, TLS by SNI (passed
// through, never terminated) and TCP port forwards, all from a routing table
// read from the database and swapped live without dropping connections.
package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Routes is where the routing table comes from; *store.Store is one.
type Routes interface {
	ForwardRoutes(ctx context.Context, zone string) (store.Routes, error)
	ForwardRoutesVersion(ctx context.Context) (int64, error)
}

// Config is validated once by New.
type Config struct {
	Zone string // region zone; names are <vm>.<tenant>.<zone>
	// PortMin and PortMax are the staff range of public ports customers may
	// forward; forwards outside it are never opened. Both 0: no TCP forwards.
	PortMin, PortMax int
	// PortHost is the address TCP forward listeners bind; "" is every address.
	PortHost string
	// MaxConnsPerVM caps concurrent connections (HTTP: requests in flight)
	// to one VM; default 256.
	MaxConnsPerVM int
	// MaxConns caps the client connections each front end (HTTP, TLS)
	// holds at once, whatever their state, so that many slow clients cannot
	// run the process out of file descriptors; default 4096. Further
	// clients wait in the kernel's accept queue.
	MaxConns int
	// MaxConnsPerSource caps, per front end, the connections one client
	// address holds at once; further ones are closed at once. Default 256.
	MaxConnsPerSource int
	// IdleTimeout ends connections that carried nothing for this long;
	// default 5 min.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the wait for request headers or a TLS
	// ClientHello, so slow clients cannot hold slots; default 10 s.
	HandshakeTimeout time.Duration
	// DialTimeout bounds connecting to a VM; default 5 s.
	DialTimeout time.Duration
	// Poll is how often the table's version is checked; default 1 s.
	Poll time.Duration
}

// Forwarder holds the live routing table and the per-VM connection counts
// shared by the HTTP, TLS and TCP front ends.
type Forwarder struct {
	cfg   Config
	src   Routes
	log   *slog.Logger
	table atomic.Pointer[store.Routes]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new table
	// live holds, per VM, the cancel function of every connection (HTTP:
	// request) open to it: their count is the per-VM cap, and a VM that
	// appears in the table's Cut set has them all ended.
	live map[netip.Addr]map[*context.CancelFunc]struct{}
}

// New validates cfg and returns a forwarder with an empty table; Serve
// loads it.
func New(cfg Config, src Routes, log *slog.Logger) (*Forwarder, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Zone = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(cfg.Zone)), ".")
	if cfg.Zone == "" {
		return nil, errors.New("forwarder zone is empty")
	}
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
			return nil, fmt.Errorf("forwarder port range %d–%d is not a range of TCP ports", cfg.PortMin, cfg.PortMax)
		}
	}
	if cfg.PortHost != "" {
		if _, err := netip.ParseAddr(cfg.PortHost); err != nil {
			return nil, fmt.Errorf("forwarder port host: %w", err)
		}
	}
	if cfg.MaxConnsPerVM <= 0 {
		cfg.MaxConnsPerVM = 256
	}
	if cfg.MaxConnsPerSource <= 0 {
		cfg.MaxConnsPerSource = 256
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4096
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	f := &Forwarder{cfg: cfg, src: src, log: log, changed: make(chan struct{}), live: map[netip.Addr]map[*context.CancelFunc]struct{}{}}
	f.table.Store(&store.Routes{Version: -1})
	return f, nil
}

// Refresh reloads the table when its version moved. Serve calls it every
// Poll; connections already open are not touched.
func (f *Forwarder) Refresh(ctx context.Context) error {
	v, err := f.src.ForwardRoutesVersion(ctx)
	if err != nil {
		return fmt.Errorf("read forward routes version: %w", err)
	}
	if v == f.table.Load().Version {
		return nil
	}
	r, err := f.src.ForwardRoutes(ctx, f.cfg.Zone)
	if err != nil {
		return fmt.Errorf("load forward routes: %w", err)
	}
	f.mu.Lock()
	f.table.Store(&r)
	close(f.changed)
	f.changed = make(chan struct{})
	cut := 0
	for vm := range r.Cut {
		for cancel := range f.live[vm] {
			(*cancel)()
			cut++
		}
	}
	f.mu.Unlock()
	f.log.InfoContext(ctx, "forward routes loaded", "version", r.Version, "http", len(r.HTTP), "tls", len(r.TLS), "tcp", len(r.TCP))
	if cut > 0 {
		f.log.InfoContext(ctx, "connections to suspended tenants' vms ended", "connections", cut, "vms", len(r.Cut))
	}
	return nil
}

// Version is the version of the table in use, -1 before the first load.
func (f *Forwarder) Version() int64 { return f.table.Load().Version }

// changes returns a channel closed at the next table change.
func (f *Forwarder) changes() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Serve keeps the table fresh and runs the TCP port forwards until ctx
// ends. The HTTP and TLS front ends run beside it (HTTP().Serve, TLS().Serve).
func (f *Forwarder) Serve(ctx context.Context) error {
	if err := f.Refresh(ctx); err != nil {
		// Keep going with an empty table; the database may come back.
		f.log.ErrorContext(ctx, "forward routes not loaded", "err", err)
	}
	ports := newPorts(f)
	done := make(chan struct{})
	go func() { defer close(done); ports.run(ctx) }()
	// While the database is out the current table stays in force.
	reloads := &backoff.Loop{Base: f.cfg.Poll, What: "reloading forward routes", Log: f.log}
	wait := f.cfg.Poll
	for {
		if !backoff.Sleep(ctx, wait) {
			<-done
			return nil
		}
		err := f.Refresh(ctx)
		if ctx.Err() == nil {
			wait = reloads.Next(ctx, err)
		}
	}
}

// acquire takes one of the VM's connection slots. The connection runs on
// the returned context, which ends when the VM's tenant is suspended;
// release gives the slot back. It fails when the VM has no free slot or
// is cut already.
func (f *Forwarder) acquire(ctx context.Context, vm netip.Addr) (_ context.Context, release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.table.Load().Cut[vm] || len(f.live[vm]) >= f.cfg.MaxConnsPerVM {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(ctx)
	key := &cancel
	if f.live[vm] == nil {
		f.live[vm] = map[*context.CancelFunc]struct{}{}
	}
	f.live[vm][key] = struct{}{}
	return ctx, func() {
		cancel()
		f.mu.Lock()
		defer f.mu.Unlock()
		if delete(f.live[vm], key); len(f.live[vm]) == 0 {
			delete(f.live, vm)
		}
	}, true
}

// hostName normalises a Host header or SNI name for lookup.
func hostName(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
