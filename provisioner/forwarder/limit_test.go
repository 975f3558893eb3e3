package forwarder

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitListener(raw, 2, 0)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	case <-time.After(200 * time.Millisecond):
	}
	_ = first.Close()
	_ = first.Close() // a second Close must not free a second slot
	select {
	case c := <-accepted:
		_ = c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the waiting connection was not accepted after one closed")
	}
	_ = second.Close()
}

func TestLimitListenerPerSource(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitListener(raw, 10, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	wantAccepted := func(what string) net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(2 * time.Second):
			t.Fatalf("%s was not accepted", what)
			return nil
		}
	}
	dial("127.0.0.1")
	dial("127.0.0.1")
	first := wantAccepted("the first connection")
	wantAccepted("the second connection")
	// A third from the same address is closed by the server.
	third := dial("127.0.0.1")
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := third.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a third connection from one address read %d bytes, %v; want it closed", n, err)
	}
	// Another address still gets in.
	dial("127.0.0.2")
	wantAccepted("a connection from another address")
	// The address gets a slot back when one of its connections closes.
	_ = first.Close()
	dial("127.0.0.1")
	wantAccepted("a connection after one of the address's closed")
	select {
	case c := <-accepted:
		t.Errorf("a refused connection reached the server: %v", c.RemoteAddr())
	default:
	}
}
