package nameserver

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// The UDP socket stays with the miekg server, which keeps its shutdown and
// its per-packet goroutine for what needs the full handler; a decorated
// reader sits in its read loop and answers the common queries itself from
// the same goroutine, batched (recvmmsg/sendmmsg on Linux) where the socket
// is bound to one address.

const (
	batchSize = 64
	// maxUDPQuery is the read buffer: the largest datagram, so nothing is
	// cut before the handler sees it.
	maxUDPQuery   = 65535
	udpReadBuffer = 4 << 20
)

// batcher moves many datagrams per system call. After read, query and addr
// describe datagram i; reply queues an answer to its sender until flush.
type batcher interface {
	read() (int, error)
	query(i int) (q []byte, src netip.Addr, ok bool)
	addr(i int) net.Addr
	reply(i int, msg []byte)
	flush() error
}

// udpSocket hides the *net.UDPConn from the miekg server so that it reads
// through our PacketConnReader (ReadPacketConn) instead of ReadUDP.
type udpSocket struct{ *net.UDPConn }

// slowPacket is a query for the full handler, owned by it once returned.
type slowPacket struct {
	b    []byte
	addr net.Addr
}

// udpReader answers from the fast path and returns only the other queries
// to the miekg server.
type udpReader struct {
	dns.Reader
	s   *Server
	ctx context.Context

	// Batched mode (socket bound to one address).
	batch   batcher
	replies [][]byte
	pending []slowPacket
	next    int

	buf []byte // per-packet mode
	rep []byte
}

// udpServer returns the miekg server for pc, with the fast path when pc is
// a UDP socket.
func (s *Server) udpServer(ctx context.Context, pc net.PacketConn, h dns.Handler) *dns.Server {
	srv := &dns.Server{PacketConn: pc, Handler: h, UDPSize: int(s.cfg.UDPSize)}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return srv
	}
	// Queries queue in the kernel while a batch is answered; the default
	// buffer (about 200 KiB) overflows at a few hundred in flight.
	if err := conn.SetReadBuffer(udpReadBuffer); err != nil {
		s.log.WarnContext(ctx, "dns udp read buffer", "err", err)
	}
	r := &udpReader{s: s, ctx: ctx}
	srv.DecorateReader = func(d dns.Reader) dns.Reader { r.Reader = d; return r }
	local, _ := conn.LocalAddr().(*net.UDPAddr)
	if local != nil && !local.IP.IsUnspecified() {
		if r.batch, ok = newBatcher(conn); ok {
			r.replies = make([][]byte, batchSize)
			for i := range r.replies {
				r.replies[i] = make([]byte, 0, 512)
			}
			srv.PacketConn = udpSocket{conn}
			return srv
		}
	}
	// Bound to every address: replies must leave from the address the
	// query came to, which miekg's sessions (IP_PKTINFO) take care of.
	r.buf = make([]byte, maxUDPQuery)
	return srv
}

// ReadPacketConn serves the batched mode: it reads a batch, writes the fast
// answers in one call, and returns the rest one by one.
func (r *udpReader) ReadPacketConn(net.PacketConn, time.Duration) ([]byte, net.Addr, error) {
	for {
		if r.next < len(r.pending) {
			p := r.pending[r.next]
			r.pending[r.next] = slowPacket{}
			r.next++
			return p.b, p.addr, nil
		}
		r.pending, r.next = r.pending[:0], 0
		n, err := r.batch.read()
		if err != nil {
			return nil, nil, err
		}
		w := 0
		for i := range n {
			q, src, ok := r.batch.query(i)
			if !ok {
				continue
			}
			reply, ok := r.s.answerUDP(r.replies[w][:0], q, src)
			if !ok {
				r.pending = append(r.pending, slowPacket{b: append([]byte(nil), q...), addr: r.batch.addr(i)})
				continue
			}
			if len(reply) == 0 {
				continue // rate-limited
			}
			r.replies[w] = reply
			r.batch.reply(i, reply)
			w++
		}
		if err := r.batch.flush(); err != nil {
			r.s.log.Log(r.ctx, slog.LevelDebug, "dns answer", "err", err)
		}
	}
}

// ReadUDP serves a socket bound to every address, one packet at a time.
func (r *udpReader) ReadUDP(conn *net.UDPConn, _ time.Duration) ([]byte, *dns.SessionUDP, error) {
	for {
		n, sess, err := dns.ReadFromSessionUDP(conn, r.buf)
		if err != nil {
			return nil, nil, err
		}
		var src netip.Addr
		if ua, ok := sess.RemoteAddr().(*net.UDPAddr); ok {
			src, _ = netip.AddrFromSlice(ua.IP)
		}
		reply, ok := r.s.answerUDP(r.rep[:0], r.buf[:n], src.Unmap())
		if !ok {
			return append([]byte(nil), r.buf[:n]...), sess, nil
		}
		r.rep = reply
		if len(reply) == 0 {
			continue // rate-limited
		}
		if _, err := dns.WriteToSessionUDP(conn, reply, sess); err != nil {
			r.s.log.Log(r.ctx, slog.LevelDebug, "dns answer", "err", err)
		}
	}
}
