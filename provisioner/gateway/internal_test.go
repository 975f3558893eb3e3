package gateway

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func FuzzParseDirectTCPIP(f *testing.F) {
	f.Add(ssh.Marshal(directTCPIP{Host: "web.acme.cloud.internal", Port: 22, OriginHost: "192.0.2.1", OriginPort: 5555}))
	f.Add(ssh.Marshal(directTCPIP{Host: "10.0.0.5", Port: 80}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(bytes.Repeat([]byte{0}, 17))
	f.Fuzz(func(t *testing.T, payload []byte) {
		host, port, err := parseDirectTCPIP(payload)
		if err != nil {
			return
		}
		if host == "" || len(host) > 255 || port < 1 || port > 65535 {
			t.Fatalf("accepted host %q port %d", host, port)
		}
	})
}

func TestLimiter(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(3, 2, 2, time.Minute)
	l.now = func() time.Time { return clock }
	var got []string
	admit := func(ip string) func() {
		release, why := l.admit(ip)
		got = append(got, ip+":"+why)
		return release
	}
	r1 := admit("a")
	admit("a")
	admit("a") // per-address cap
	admit("b")
	admit("c") // total cap
	r1()
	r1() // a second release changes nothing
	admit("c")
	admit("d") // total cap again
	want := []string{"a:", "a:", "a:2 connections already open from this address", "b:",
		"c:3 connections already open", "c:", "d:3 connections already open"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admissions (-want +got):\n%s", diff)
	}

	// Failures slide out of the window one by one.
	l = newLimiter(100, 100, 2, time.Minute)
	l.now = func() time.Time { return clock }
	l.fail("x")
	clock = clock.Add(30 * time.Second)
	l.fail("x")
	if _, why := l.admit("x"); why == "" {
		t.Error("two failures in a minute: admitted")
	}
	if _, why := l.admit("y"); why != "" {
		t.Errorf("another address refused: %s", why)
	}
	clock = clock.Add(31 * time.Second)
	if _, why := l.admit("x"); why != "" {
		t.Errorf("first failure left the window, still refused: %s", why)
	}
	clock = clock.Add(30 * time.Second)
	l.sweep()
	if len(l.failures) != 0 {
		t.Errorf("sweep kept %v", l.failures)
	}
}
