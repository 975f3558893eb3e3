package forwarder

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// splice copies both ways between client and backend until both sides are
// done, or until neither carried a byte for a whole idle period. Each
// direction reads with a deadline renewed only when it fires, so busy
// connections pay nothing per read, and TCP to TCP copies stay zero-copy
// (splice(2)). Ending ctx ends the connection.
func splice(ctx context.Context, client, backend net.Conn, idle time.Duration) (up, down int64) {
	var idleUp, idleDown atomic.Bool
	var wg sync.WaitGroup
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = client.Close(); _ = backend.Close() }) }
	defer context.AfterFunc(ctx, closeBoth)()
	wg.Go(func() { up = pipe(backend, client, idle, &idleUp, &idleDown, closeBoth) })
	down = pipe(client, backend, idle, &idleDown, &idleUp, closeBoth)
	wg.Wait()
	closeBoth()
	return up, down
}

// pipe copies src to dst. mine tells the other direction this one was idle
// for its last whole period; when both were, the connection ends.
func pipe(dst, src net.Conn, idle time.Duration, mine, other *atomic.Bool, closeBoth func()) int64 {
	var total int64
	for {
		_ = src.SetReadDeadline(time.Now().Add(idle))
		n, err := io.Copy(dst, src)
		total += n
		if err == nil {
			// EOF: pass the half-close on and let the other direction finish.
			mine.Store(true)
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				if cw.CloseWrite() == nil {
					return total
				}
			}
			closeBoth()
			return total
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			closeBoth()
			return total
		}
		if n > 0 {
			mine.Store(false)
			continue
		}
		mine.Store(true)
		if other.Load() {
			closeBoth()
			return total
		}
	}
}

// proxyHeader builds a PROXY protocol v2 header (binary, PROXY command,
// TCP over IPv4 or IPv6) telling the VM who the client is.
func proxyHeader(client, local netip.AddrPort) []byte {
	sig := []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}
	src, dst := client.Addr().Unmap(), local.Addr().Unmap()
	if src.Is4() != dst.Is4() {
		// Mixed families: say both in IPv6, v4 mapped.
		src, dst = netip.AddrFrom16(src.As16()), netip.AddrFrom16(dst.As16())
	}
	b := append(sig, 0x21) // version 2, PROXY
	if src.Is4() {
		b = append(b, 0x11) // AF_INET, STREAM
		b = binary.BigEndian.AppendUint16(b, 12)
		s4, d4 := src.As4(), dst.As4()
		b = append(append(b, s4[:]...), d4[:]...)
	} else {
		b = append(b, 0x21) // AF_INET6, STREAM
		b = binary.BigEndian.AppendUint16(b, 36)
		s16, d16 := src.As16(), dst.As16()
		b = append(append(b, s16[:]...), d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, client.Port())
	return binary.BigEndian.AppendUint16(b, local.Port())
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
