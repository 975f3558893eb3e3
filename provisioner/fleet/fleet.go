// Package fleet keeps in touch with the VM hosts: one libvirt connection per
// host, reused across work, and a loop that discovers each host's cores,
// memory and storage and pins its SSH host key on first contact.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/backoff"
	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/lifecycle"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Pool hands out one connection per host and redials after a failure.
type Pool struct {
	signer ssh.Signer
	mu     sync.Mutex
	conns  map[string]*entry
}

type entry struct {
	conn *hypervisor.Conn
	uri  string
	key  string
}

// NewPool makes a pool; signer is the client key for qemu+ssh hosts (nil if
// none are used).
func NewPool(signer ssh.Signer) *Pool {
	return &Pool{signer: signer, conns: map[string]*entry{}}
}

// dial connects to h, pinning the host key the store recorded; hostKey is
// the key the host presented.
func (p *Pool) dial(ctx context.Context, h store.Host) (*hypervisor.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.conns[h.ID]; ok {
		if e.uri == h.URI && e.key == h.SSHHostKey {
			return e.conn, nil
		}
		_ = e.conn.Close()
		delete(p.conns, h.ID)
	}
	c, err := hypervisor.Dial(ctx, hypervisor.Config{URI: h.URI, HostKey: h.SSHHostKey, Signer: p.signer, Timeout: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	p.conns[h.ID] = &entry{conn: c, uri: h.URI, key: h.SSHHostKey}
	return c, nil
}

// Conn implements lifecycle.Hosts. A host whose SSH key is not pinned yet is
// refused: discovery pins it first.
func (p *Pool) Conn(ctx context.Context, h store.Host) (lifecycle.Hypervisor, error) {
	if isSSH(h.URI) && h.SSHHostKey == "" {
		return nil, errors.New("the host's SSH key is not known yet; wait for discovery")
	}
	c, err := p.dial(ctx, h)
	if err != nil {
		return nil, err
	}
	return checked{Conn: c, pool: p, hostID: h.ID}, nil
}

// Forget closes a host's connection, for example after an error on it.
func (p *Pool) Forget(hostID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.conns[hostID]; ok {
		_ = e.conn.Close()
		delete(p.conns, hostID)
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, e := range p.conns {
		_ = e.conn.Close()
		delete(p.conns, id)
	}
}

func isSSH(uri string) bool { return len(uri) > 9 && uri[:9] == "qemu+ssh:" }

// checked drops a connection from the pool when libvirt says it is gone, so
// the next pass redials.
type checked struct {
	*hypervisor.Conn
	pool   *Pool
	hostID string
}

func (c checked) State(ctx context.Context, name string) (hypervisor.DomainState, error) {
	s, err := c.Conn.State(ctx, name)
	if err != nil && !errors.Is(err, context.Canceled) {
		c.pool.Forget(c.hostID)
	}
	return s, err
}

// DiscoveryConfig says how often hosts are visited and what each must offer.
type DiscoveryConfig struct {
	// Interval between visits of a host; zero means a minute.
	Interval time.Duration
	// ConsoleLogDir, when set, is the directory on every host where VMs'
	// serial consoles are logged. Discovery creates it when it is missing
	// (libvirt refuses to start a domain whose console log directory does
	// not exist) and keeps a host where that fails out of service.
	ConsoleLogDir string
}

// Discoverer refreshes every host's facts periodically.
type Discoverer struct {
	st   *store.Store
	pool *Pool
	cfg  DiscoveryConfig
	log  *slog.Logger
}

// NewDiscoverer makes a discovery loop that visits every host each interval.
func NewDiscoverer(st *store.Store, pool *Pool, cfg DiscoveryConfig, log *slog.Logger) *Discoverer {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	return &Discoverer{st: st, pool: pool, cfg: cfg, log: log}
}

// Serve runs discovery until ctx ends; new hosts are visited within a few
// seconds of being added.
func (d *Discoverer) Serve(ctx context.Context) error {
	last := map[string]time.Time{}
	lists := &backoff.Loop{Base: 3 * time.Second, What: "listing hosts", Log: d.log}
	for {
		hosts, err := d.st.ListHosts(ctx)
		wait := 3 * time.Second
		if ctx.Err() == nil {
			wait = lists.Next(ctx, err)
		}
		for _, h := range hosts {
			if !h.Enabled || time.Since(last[h.ID]) < d.cfg.Interval && h.State != store.HostNew {
				continue
			}
			last[h.ID] = time.Now()
			d.Refresh(ctx, h.Host)
		}
		select {
		case <-ctx.Done():
			d.pool.Close()
			return nil
		case <-time.After(wait):
		}
	}
}

// Refresh discovers one host now and records the result.
func (d *Discoverer) Refresh(ctx context.Context, h store.Host) {
	log := d.log.With("host", h.Name)
	facts, key, err := d.discover(ctx, h)
	if key != "" && h.SSHHostKey == "" {
		// Pin on first contact, even if the inventory below failed.
		if perr := d.st.PinHostKey(ctx, h.ID, key); perr != nil {
			log.Error("pin host key", "err", perr)
		}
	}
	if err != nil {
		d.pool.Forget(h.ID)
		log.Warn("host discovery failed", "err", err)
		if rerr := d.st.RecordHostError(ctx, h.ID, err.Error()); rerr != nil {
			log.Error("record host error", "err", rerr)
		}
		return
	}
	if err := d.st.RecordHostFacts(ctx, h.ID, facts, key); err != nil {
		log.Error("record host facts", "err", err)
		return
	}
	if h.State != store.HostReady {
		log.Info("host ready", "cores", facts.Cores, "memory_mib", facts.MemoryMiB, "disk_gib", facts.DiskGiB)
	}
}

func (d *Discoverer) discover(ctx context.Context, h store.Host) (store.Facts, string, error) {
	c, err := d.pool.dial(ctx, h)
	if err != nil {
		return store.Facts{}, "", err
	}
	f, err := c.Facts(ctx)
	if err != nil {
		return store.Facts{}, c.HostKey(), err
	}
	out := store.Facts{CPUModel: f.CPUModel, Cores: int64(f.Threads), MemoryMiB: f.MemoryMiB}
	found := false
	for _, pool := range f.Pools {
		if pool.Name == h.StoragePool {
			out.DiskGiB, out.DiskFreeGiB, found = pool.CapacityGiB, pool.AvailableGiB, true
		}
	}
	if !found {
		return store.Facts{}, c.HostKey(), fmt.Errorf("storage pool %q is not active on the host", h.StoragePool)
	}
	if d.cfg.ConsoleLogDir != "" {
		if err := c.EnsureDirectory(ctx, d.cfg.ConsoleLogDir); err != nil {
			return store.Facts{}, c.HostKey(), fmt.Errorf("console log directory: %w", err)
		}
	}
	return out, c.HostKey(), nil
}
