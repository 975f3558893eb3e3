package dhcpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Boot files served over TFTP to clients that do not run iPXE yet; they
// chainload iPXE, which asks again with user class "iPXE".
const (
	BIOSBootFile = "undionly.kpxe"
	UEFIBootFile = "ipxe.efi"
)

// Handler turns one request into at most one reply.
type Handler struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	httpURL string // HTTPBootURL without a trailing slash
	subnets atomic.Pointer[[]subnet]
	now     func() time.Time

	// next is, per subnet id, the address after the last one newly
	// leased: where the next new MAC's search starts, so the taken part of
	// the range is not walked on every DISCOVER. Only a hint; the
	// database's keys decide.
	mu   sync.Mutex
	next map[string]netip.Addr
}

// subnet is a boot subnet, parsed once per refresh.
type subnet struct {
	id, name string
	net      store.BootNet
}

// NewHandler returns a handler without a server around it, for tests and
// benchmarks; cfg.ServerIP must be set. Call Refresh before use.
func NewHandler(cfg Config, backend Backend, log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !cfg.ServerIP.Unmap().Is4() {
		return nil, errors.New("dhcpd: server address is not IPv4")
	}
	cfg.ServerIP = cfg.ServerIP.Unmap()
	if !cfg.TFTPServer.IsValid() {
		cfg.TFTPServer = cfg.ServerIP
	}
	return newHandler(cfg, backend, log)
}

func newHandler(cfg Config, backend Backend, log *slog.Logger) (*Handler, error) {
	h := &Handler{cfg: cfg, backend: backend, log: log, now: time.Now, next: map[string]netip.Addr{}}
	if cfg.HTTPBootURL != "" {
		u, err := url.Parse(cfg.HTTPBootURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("dhcpd: HTTP boot URL %q is not an http(s) URL", cfg.HTTPBootURL)
		}
		h.httpURL = strings.TrimRight(cfg.HTTPBootURL, "/")
	}
	empty := []subnet{}
	h.subnets.Store(&empty)
	return h, nil
}

// Refresh rereads the boot subnets; requests in flight keep the old set.
func (h *Handler) Refresh(ctx context.Context) error {
	rows, err := h.backend.ListBootSubnets(ctx)
	if err != nil {
		return fmt.Errorf("dhcpd: load boot subnets: %w", err)
	}
	out := make([]subnet, 0, len(rows))
	for _, r := range rows {
		n, err := r.Net()
		if err != nil {
			h.log.WarnContext(ctx, "skipping invalid boot subnet", "subnet", r.Name, "err", err)
			continue
		}
		if n.InRange(h.cfg.ServerIP) {
			h.log.WarnContext(ctx, "the server's own address is inside a dynamic range", "subnet", r.Name, "server_ip", h.cfg.ServerIP.String())
		}
		out = append(out, subnet{id: r.ID, name: r.Name, net: n})
	}
	h.subnets.Store(&out)
	return nil
}

func (h *Handler) subnetFor(ip netip.Addr) (subnet, bool) {
	for _, s := range *h.subnets.Load() {
		if s.net.Prefix.Contains(ip) {
			return s, true
		}
	}
	return subnet{}, false
}

// HandlePacket parses one datagram and answers it: the reply's bytes and
// where to send them, or nil when the request gets no answer (garbage,
// another server's business, a network we do not manage).
func (h *Handler) HandlePacket(ctx context.Context, b []byte, peer net.Addr) ([]byte, net.Addr) {
	req, err := dhcpv4.FromBytes(b)
	if err != nil {
		h.log.DebugContext(ctx, "ignoring a malformed packet", "from", addrString(peer), "err", err)
		return nil, nil
	}
	resp, dst := h.Handle(ctx, req)
	if resp == nil {
		return nil, nil
	}
	return resp.ToBytes(), dst
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Handle answers one parsed request; a nil reply means silence.
func (h *Handler) Handle(ctx context.Context, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 ||
		bytes.Equal(req.ClientHWAddr, make([]byte, 6)) || req.ClientHWAddr[0]&1 == 1 {
		h.log.DebugContext(ctx, "ignoring a packet that is not an Ethernet client request")
		return nil, nil
	}
	mac := req.ClientHWAddr.String()
	log := h.log.With("mac", mac, "xid", req.TransactionID.String(), "type", req.MessageType().String())
	sn, ok := h.servingSubnet(req)
	if !ok {
		// Someone else's network: staying silent is what keeps us from
		// becoming a rogue DHCP server.
		log.DebugContext(ctx, "ignoring a request from a network we do not manage", "giaddr", req.GatewayIPAddr.String())
		return nil, nil
	}
	log = log.With("subnet", sn.name)
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return h.discover(ctx, log, sn, req)
	case dhcpv4.MessageTypeRequest:
		return h.request(ctx, log, sn, req)
	case dhcpv4.MessageTypeRelease:
		if !h.forUs(req) {
			return nil, nil
		}
		if err := h.backend.Release(ctx, sn.id, mac); err != nil {
			log.ErrorContext(ctx, "release lease", "err", err)
		}
		return nil, nil
	case dhcpv4.MessageTypeDecline:
		ip, ok := addrOf(req.RequestedIPAddress())
		if !h.forUs(req) || !ok {
			return nil, nil
		}
		log.WarnContext(ctx, "client reports its address in use by another host", "ip", ip.String())
		if err := h.backend.Decline(ctx, sn.id, mac, ip, h.now()); err != nil {
			log.ErrorContext(ctx, "decline lease", "err", err)
		}
		return nil, nil
	case dhcpv4.MessageTypeInform:
		ack, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
		if err != nil {
			return nil, nil
		}
		h.networkOptions(ack, sn, 0)
		ack.UpdateOption(dhcpv4.OptServerIdentifier(h.cfg.ServerIP.AsSlice()))
		return ack, h.destination(req)
	default:
		log.DebugContext(ctx, "ignoring a message without a client message type")
		return nil, nil
	}
}

// servingSubnet is the boot subnet a request belongs to: the relay's
// (giaddr) when relayed, else the one holding our own address on the
// interface the request came in on.
func (h *Handler) servingSubnet(req *dhcpv4.DHCPv4) (subnet, bool) {
	if gi, ok := addrOf(req.GatewayIPAddr); ok {
		return h.subnetFor(gi)
	}
	return h.subnetFor(h.cfg.ServerIP)
}

// forUs tells whether a message names us as its server, or names none.
func (h *Handler) forUs(req *dhcpv4.DHCPv4) bool {
	sid, ok := addrOf(req.ServerIdentifier())
	return !ok || sid == h.cfg.ServerIP
}

func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, a.Is4() && !a.IsUnspecified()
}

func (h *Handler) discover(ctx context.Context, log *slog.Logger, sn subnet, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mac := req.ClientHWAddr.String()
	want, _ := addrOf(req.RequestedIPAddress())
	at := h.now()
	l, err := h.lease(ctx, sn, mac, want, at)
	if err != nil {
		h.leaseFailed(ctx, log, err)
		return nil, nil
	}
	if pxe := pxeClass(req); pxe != "" {
		arch := -1
		if a := req.ClientArch(); len(a) > 0 {
			arch = int(a[0])
		}
		if err := h.backend.RecordDiscovered(ctx, mac, sn.id, req.ClassIdentifier(), arch, strings.Join(req.UserClass(), ",")); err != nil {
			log.ErrorContext(ctx, "record PXE client", "err", err)
		}
	}
	offer, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	if err != nil {
		return nil, nil
	}
	h.fill(ctx, log, offer, req, sn, l, at)
	log.DebugContext(ctx, "offer", "ip", l.IP.String())
	return offer, h.destination(req)
}

func (h *Handler) request(ctx context.Context, log *slog.Logger, sn subnet, req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mac := req.ClientHWAddr.String()
	if !h.forUs(req) {
		// The client chose another server's offer: ours is not needed.
		log.DebugContext(ctx, "client chose another server", "server_id", req.ServerIdentifier().String())
		if err := h.backend.Release(ctx, sn.id, mac); err != nil {
			log.ErrorContext(ctx, "release unused offer", "err", err)
		}
		return nil, nil
	}
	// SELECTING and INIT-REBOOT name the address in option 50; RENEWING and
	// REBINDING in ciaddr.
	want, ok := addrOf(req.RequestedIPAddress())
	if !ok {
		want, ok = addrOf(req.ClientIPAddr)
	}
	if !ok {
		log.DebugContext(ctx, "ignoring a request that names no address")
		return nil, nil
	}
	if !sn.net.Prefix.Contains(want) {
		return h.nak(ctx, log, req, fmt.Sprintf("address %s is not on network %s", want, sn.net.Prefix))
	}
	at := h.now()
	l, err := h.lease(ctx, sn, mac, want, at)
	if err != nil {
		h.leaseFailed(ctx, log, err)
		return nil, nil
	}
	if l.IP != want {
		return h.nak(ctx, log, req, fmt.Sprintf("address %s is not yours; %s is", want, l.IP))
	}
	ack, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	if err != nil {
		return nil, nil
	}
	h.fill(ctx, log, ack, req, sn, l, at)
	log.DebugContext(ctx, "ack", "ip", l.IP.String())
	return ack, h.destination(req)
}

// lease asks the backend for mac's lease, starting a new MAC's search where
// the last new lease in the subnet left off.
func (h *Handler) lease(ctx context.Context, sn subnet, mac string, want netip.Addr, at time.Time) (store.Lease, error) {
	h.mu.Lock()
	from := h.next[sn.id]
	h.mu.Unlock()
	l, err := h.backend.LeaseFrom(ctx, sn.id, mac, want, from, at)
	if err != nil {
		return l, err
	}
	// A lease created just now is a new one (a renewal keeps its creation time).
	if l.CreatedAt.Equal(at.UTC().Truncate(time.Microsecond)) && sn.net.InRange(l.IP) {
		h.mu.Lock()
		h.next[sn.id] = l.IP.Next()
		h.mu.Unlock()
	}
	return l, nil
}

func (h *Handler) leaseFailed(ctx context.Context, log *slog.Logger, err error) {
	if errors.Is(err, store.ErrNoCapacity) {
		log.WarnContext(ctx, "no address to give", "err", err)
		return
	}
	log.ErrorContext(ctx, "lease", "err", err)
}

func (h *Handler) nak(ctx context.Context, log *slog.Logger, req *dhcpv4.DHCPv4, why string) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	log.InfoContext(ctx, "nak", "reason", why)
	nak, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(h.cfg.ServerIP.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptMessage(why)),
	)
	if err != nil {
		return nil, nil
	}
	// A NAK goes to everyone on the link: the client's address is wrong.
	if gi, ok := addrOf(req.GatewayIPAddr); ok {
		nak.SetBroadcast()
		return nak, &net.UDPAddr{IP: gi.AsSlice(), Port: dhcpv4.ServerPort}
	}
	return nak, &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}

// fill sets the lease, the network options and, for PXE clients, the boot file.
func (h *Handler) fill(ctx context.Context, log *slog.Logger, resp, req *dhcpv4.DHCPv4, sn subnet, l store.Lease, at time.Time) {
	resp.YourIPAddr = l.IP.AsSlice()
	resp.UpdateOption(dhcpv4.OptServerIdentifier(h.cfg.ServerIP.AsSlice()))
	left := l.ExpiresAt.Sub(at).Round(time.Second)
	if left <= 0 || left > sn.net.LeaseTime {
		left = sn.net.LeaseTime
	}
	h.networkOptions(resp, sn, left)
	if l.Hostname != "" {
		resp.UpdateOption(dhcpv4.OptHostName(l.Hostname))
	}
	h.bootOptions(ctx, log, resp, req, l)
}

func (h *Handler) networkOptions(resp *dhcpv4.DHCPv4, sn subnet, lease time.Duration) {
	n := sn.net
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(n.Prefix.Bits(), 32)))
	if n.Gateway.IsValid() {
		resp.UpdateOption(dhcpv4.OptRouter(n.Gateway.AsSlice()))
	}
	if len(n.DNS) > 0 {
		dns := make([]net.IP, len(n.DNS))
		for i, d := range n.DNS {
			dns[i] = d.AsSlice()
		}
		resp.UpdateOption(dhcpv4.OptDNS(dns...))
	}
	if lease > 0 {
		resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(lease))
		resp.UpdateOption(dhcpv4.OptRenewTimeValue(lease / 2))
		resp.UpdateOption(dhcpv4.OptRebindingTimeValue(lease * 7 / 8))
	}
}

// destination follows RFC 2131 4.1: through the relay, else to the
// client's own address when it has one, else broadcast (a client without
// an address cannot answer ARP, so unicast to yiaddr would need a raw socket).
func (h *Handler) destination(req *dhcpv4.DHCPv4) *net.UDPAddr {
	if gi, ok := addrOf(req.GatewayIPAddr); ok {
		return &net.UDPAddr{IP: gi.AsSlice(), Port: dhcpv4.ServerPort}
	}
	if ci, ok := addrOf(req.ClientIPAddr); ok {
		return &net.UDPAddr{IP: ci.AsSlice(), Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}
