package nameserver

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgBatch reads and writes up to batchSize datagrams per system call
// (recvmmsg/sendmmsg). The calls are raw: they never block (the socket is
// non-blocking and the poller waits), so the runtime need not hand the P to
// another thread around each one, which with GOMAXPROCS=1 cost more than
// the answer itself.
type mmsgBatch struct {
	rc    syscall.RawConn
	in    []unix.Mmsghdr
	iov   []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6 // large enough for IPv4 too
	out   []unix.Mmsghdr
	oiov  []unix.Iovec
	nout  int
}

func newBatcher(conn *net.UDPConn) (batcher, bool) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, false
	}
	b := &mmsgBatch{rc: rc, in: make([]unix.Mmsghdr, batchSize), iov: make([]unix.Iovec, batchSize),
		bufs: make([][]byte, batchSize), names: make([]unix.RawSockaddrInet6, batchSize),
		out: make([]unix.Mmsghdr, batchSize), oiov: make([]unix.Iovec, batchSize)}
	for i := range b.in {
		b.bufs[i] = make([]byte, maxUDPQuery)
		b.iov[i].Base = &b.bufs[i][0]
		b.iov[i].SetLen(maxUDPQuery)
		b.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.in[i].Hdr.Iov = &b.iov[i]
		b.in[i].Hdr.SetIovlen(1)
	}
	return b, true
}

func (b *mmsgBatch) read() (int, error) {
	for i := range b.in {
		b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].Hdr.Flags = 0
		b.in[i].Len = 0
	}
	b.nout = 0
	var n int
	var errno syscall.Errno
	err := b.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), uintptr(len(b.in)), 0, 0, 0)
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// source is the sender of datagram i.
func (b *mmsgBatch) source(i int) (netip.AddrPort, bool) {
	sa := &b.names[i]
	port := func(p uint16) uint16 {
		pb := (*[2]byte)(unsafe.Pointer(&p))
		return uint16(pb[0])<<8 | uint16(pb[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port(s4.Port)), true
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

func (b *mmsgBatch) query(i int) ([]byte, netip.Addr, bool) {
	ap, ok := b.source(i)
	return b.bufs[i][:b.in[i].Len], ap.Addr().WithZone("").Unmap(), ok
}

func (b *mmsgBatch) addr(i int) net.Addr {
	ap, _ := b.source(i)
	return net.UDPAddrFromAddrPort(ap)
}

// reply queues msg for the sender of datagram i; msg must stay untouched
// until flush.
func (b *mmsgBatch) reply(i int, msg []byte) {
	o := &b.out[b.nout]
	b.oiov[b.nout].Base = &msg[0]
	b.oiov[b.nout].SetLen(len(msg))
	o.Hdr.Name, o.Hdr.Namelen = b.in[i].Hdr.Name, b.in[i].Hdr.Namelen
	o.Hdr.Iov = &b.oiov[b.nout]
	o.Hdr.SetIovlen(1)
	b.nout++
}

// flush sends the queued replies; one that fails is dropped, not the rest.
func (b *mmsgBatch) flush() error {
	var last error
	for sent := 0; sent < b.nout; {
		var n int
		var errno syscall.Errno
		err := b.rc.Write(func(fd uintptr) bool {
			for {
				r, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[sent])), uintptr(b.nout-sent), 0, 0, 0)
				switch e {
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					return false
				}
				n, errno = int(r), e
				return true
			}
		})
		switch {
		case err != nil:
			return err
		case errno != 0:
			last = errno
			sent++ // skip the datagram that failed
		default:
			sent += n
		}
	}
	b.nout = 0
	return last
}
