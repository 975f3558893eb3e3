package forwarder_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/forwarder"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

var (
	benchListen  = flag.String("fwdbench.listen", "", "serve the HTTP forwarder here for .ci/bench-forward.sh until SIGTERM")
	benchBackend = flag.String("fwdbench.backend", "", "with -fwdbench.listen: the VM web.acme.cloud.internal routes to; alone: serve a tiny web site there")
)

// TestServeForBench is not a test: .ci/bench-forward.sh runs it as a server.
func TestServeForBench(t *testing.T) {
	if *benchBackend == "" {
		t.Skip("run by .ci/bench-forward.sh")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	addr := *benchBackend
	if *benchListen != "" {
		addr = *benchListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if *benchListen == "" {
		body := []byte("hello from the vm\n")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(body)
		})}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		fmt.Println("ready")
		_ = srv.Serve(ln)
		return
	}
	src := &fakeRoutes{r: store.Routes{Version: 1, HTTP: map[string]netip.AddrPort{
		"web.acme.cloud.internal": netip.MustParseAddrPort(*benchBackend),
	}}}
	f, err := forwarder.New(forwarder.Config{Zone: "cloud.internal"}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.Serve(ctx) }()
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_ = f.HTTP().Serve(ctx, ln)
}
