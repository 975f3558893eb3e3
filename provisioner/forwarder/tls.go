package forwarder

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// TLSFront reads the SNI name of each TLS connection and passes the raw
// connection to port 443 of the VM publishing that name; the customer's
// server terminates TLS with its own certificate.
type TLSFront struct{ f *Forwarder }

// TLS returns the TLS front end.
func (f *Forwarder) TLS() *TLSFront { return &TLSFront{f} }

// TLS alert descriptions we send.
const (
	alertHandshakeFailure = 40
	alertInternalError    = 80
	alertUnrecognizedName = 112
)

// Serve accepts on ln until ctx ends; connections already spliced carry on
// until they end or go idle.
func (t *TLSFront) Serve(ctx context.Context, ln net.Listener) error {
	ln = limitListener(ln, t.f.cfg.MaxConns, t.f.cfg.MaxConnsPerSource)
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		wg.Go(func() { t.handle(ctx, c) })
	}
}

func (t *TLSFront) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	client := c.RemoteAddr().String()
	_ = c.SetDeadline(time.Now().Add(t.f.cfg.HandshakeTimeout))
	name, hello, err := readClientHello(c)
	if err != nil {
		t.f.log.InfoContext(ctx, "tls connection refused: no client hello", "client", client, "err", err)
		sendAlert(c, alertHandshakeFailure)
		return
	}
	host := hostName(name)
	if host == "" {
		t.f.log.InfoContext(ctx, "tls connection refused: no server name", "client", client)
		sendAlert(c, alertUnrecognizedName)
		return
	}
	target, ok := t.f.table.Load().TLS[host]
	if !ok {
		t.f.log.InfoContext(ctx, "tls connection refused: no site", "host", host, "client", client)
		sendAlert(c, alertUnrecognizedName)
		return
	}
	_ = c.SetDeadline(time.Time{})
	first := hello
	if target.ProxyProtocol {
		first = append(proxyHeader(addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())), hello...)
	}
	if !t.f.tcpForward(ctx, c, target.Addr, first, "host", host) {
		sendAlert(c, alertInternalError)
	}
}

// readClientHello lets crypto/tls parse the ClientHello from a connection
// that records what it reads and never writes, and stops the handshake as
// soon as the server name is known. The recorded bytes go to the VM.
func readClientHello(c net.Conn) (string, []byte, error) {
	rec := &recorder{r: c}
	var name string
	seen := false
	errStop := errors.New("client hello read")
	srv := tls.Server(rec, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name, seen = h.ServerName, true
			return nil, errStop
		},
	})
	err := srv.Handshake()
	if !seen {
		if err == nil {
			err = errors.New("handshake ended without a client hello")
		}
		return "", nil, err
	}
	return name, rec.buf, nil
}

// recorder is a read-only net.Conn that keeps every byte read.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// Write swallows crypto/tls's own alert; we send ours.
func (r *recorder) Write(p []byte) (int, error)      { return len(p), nil }
func (r *recorder) Close() error                     { return nil }
func (r *recorder) SetDeadline(time.Time) error      { return nil }
func (r *recorder) SetReadDeadline(time.Time) error  { return nil }
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }
func (r *recorder) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (r *recorder) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// sendAlert writes a fatal TLS alert record and gives up on the connection.
func sendAlert(c net.Conn, desc byte) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte{21, 3, 3, 0, 2, 2, desc})
}
