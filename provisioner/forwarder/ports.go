package forwarder

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// ports runs one listener per forwarded public port in the staff range,
// opening and closing them as the table changes. Closing a listener leaves
// the connections it accepted running.
type ports struct {
	f    *Forwarder
	open map[int]net.Listener
	wg   sync.WaitGroup
}

func newPorts(f *Forwarder) *ports { return &ports{f: f, open: map[int]net.Listener{}} }

func (p *ports) run(ctx context.Context) {
	defer p.wg.Wait()
	for {
		ch := p.f.changes()
		p.sync(ctx)
		retry := time.NewTimer(p.f.cfg.Poll * 5)
		select {
		case <-ctx.Done():
			for port, ln := range p.open {
				_ = ln.Close()
				delete(p.open, port)
			}
			return
		case <-ch:
		case <-retry.C:
			// Retry ports that could not be opened before.
		}
		retry.Stop()
	}
}

func (p *ports) inRange(port int) bool {
	c := p.f.cfg
	return c.PortMin != 0 && port >= c.PortMin && port <= c.PortMax
}

func (p *ports) sync(ctx context.Context) {
	want := p.f.table.Load().TCP
	for port, ln := range p.open {
		if _, ok := want[port]; !ok {
			_ = ln.Close()
			delete(p.open, port)
			p.f.log.InfoContext(ctx, "port forward closed", "port", port)
		}
	}
	for port := range want {
		if _, ok := p.open[port]; ok {
			continue
		}
		if !p.inRange(port) {
			p.f.log.WarnContext(ctx, "port forward outside the staff range not opened", "port", port)
			continue
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(p.f.cfg.PortHost, strconv.Itoa(port)))
		if err != nil {
			p.f.log.ErrorContext(ctx, "port forward not opened", "port", port, "err", err)
			continue
		}
		p.open[port] = ln
		p.f.log.InfoContext(ctx, "port forward opened", "port", port)
		p.wg.Go(func() { p.accept(ctx, port, ln) })
	}
}

func (p *ports) accept(ctx context.Context, port int, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.f.log.WarnContext(ctx, "port forward accept", "port", port, "err", err)
			continue
		}
		p.wg.Go(func() { p.forward(ctx, port, c) })
	}
}

func (p *ports) forward(ctx context.Context, port int, c net.Conn) {
	defer c.Close()
	client := c.RemoteAddr().String()
	// Looked up per connection: the table may have moved since the listener opened.
	target, ok := p.f.table.Load().TCP[port]
	if !ok {
		p.f.log.InfoContext(ctx, "port forward refused: no longer forwarded", "port", port, "client", client)
		return
	}
	p.f.tcpForward(ctx, c, target, nil, "port", port)
}

// tcpForward dials target and splices c to it, after sending first; it
// enforces the per-VM connection cap.
func (f *Forwarder) tcpForward(ctx context.Context, c net.Conn, target netip.AddrPort, first []byte, what string, route any) bool {
	client := c.RemoteAddr().String()
	ctx, release, ok := f.acquire(ctx, target.Addr())
	if !ok {
		f.log.InfoContext(ctx, "connection refused: vm connection cap reached or tenant suspended", what, route, "client", client, "vm", target.Addr(), "cap", f.cfg.MaxConnsPerVM)
		return false
	}
	defer release()
	d := net.Dialer{Timeout: f.cfg.DialTimeout}
	b, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		f.log.InfoContext(ctx, "connection refused: vm not answering", what, route, "client", client, "vm", target, "err", err)
		return false
	}
	defer b.Close()
	if len(first) > 0 {
		if _, err := b.Write(first); err != nil {
			f.log.DebugContext(ctx, "write to vm", what, route, "vm", target, "err", err)
			return true
		}
	}
	f.log.DebugContext(ctx, "connection open", what, route, "client", client, "vm", target)
	up, down := splice(ctx, c, b, f.cfg.IdleTimeout)
	f.log.DebugContext(ctx, "connection closed", what, route, "client", client, "vm", target, "sent", up, "received", down)
	return true
}
