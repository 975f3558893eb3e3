package forwarder

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// HTTPFront routes plain HTTP by Host header to port 80 of the VM that
// publishes that name.
type HTTPFront struct {
	f     *Forwarder
	proxy *httputil.ReverseProxy
}

type ctxKey struct{}

// HTTP returns the HTTP front end.
func (f *Forwarder) HTTP() *HTTPFront {
	d := &net.Dialer{Timeout: f.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: d.DialContext,
		// The default of 2 idle connections per VM makes every burst dial
		// anew; keep as many as a VM may have in flight.
		MaxIdleConnsPerHost:   f.cfg.MaxConnsPerVM,
		MaxIdleConns:          16 * f.cfg.MaxConnsPerVM,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through as the VM sent them.
		DisableCompression: true,
	}
	h := &HTTPFront{f: f}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			target := r.In.Context().Value(ctxKey{}).(netip.AddrPort)
			r.SetURL(&url.URL{Scheme: "http", Host: target.String()})
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: newBufferPool(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.log.InfoContext(r.Context(), "http request failed: vm not answering", "host", r.Host, "client", r.RemoteAddr, "err", err)
			page(w, http.StatusBadGateway, "The site at "+hostName(r.Host)+" is not answering",
				"The server behind this name did not answer. Try again in a moment.")
		},
	}
	return h
}

// ServeHTTP routes one request.
func (h *HTTPFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostName(r.Host)
	target, ok := h.f.table.Load().HTTP[host]
	if !ok {
		h.f.log.InfoContext(r.Context(), "http request refused: no site", "host", host, "client", r.RemoteAddr)
		page(w, http.StatusNotFound, "No site is published at "+host,
			"Nothing answers to this name here. If this is your server, publish its web site (HTTP) in the Fibrix Cloud portal.")
		return
	}
	ctx, release, ok := h.f.acquire(r.Context(), target.Addr())
	if !ok {
		h.f.log.InfoContext(r.Context(), "http request refused: vm connection cap reached", "host", host, "client", r.RemoteAddr, "cap", h.f.cfg.MaxConnsPerVM)
		w.Header().Set("Retry-After", "5")
		page(w, http.StatusServiceUnavailable, "Too many connections to "+host, "This site is busy. Try again in a moment.")
		return
	}
	defer release()
	h.f.log.DebugContext(r.Context(), "http request", "host", host, "client", r.RemoteAddr, "vm", target, "method", r.Method)
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, target)))
}

// Serve answers on ln until ctx ends, then lets requests in flight finish
// for a few seconds.
func (h *HTTPFront) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: h,
		// Slow clients cannot hold a connection without sending headers.
		ReadHeaderTimeout: h.f.cfg.HandshakeTimeout,
		IdleTimeout:       h.f.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(h.f.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(limitListener(ln, h.f.cfg.MaxConns, h.f.cfg.MaxConnsPerSource)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p><p><small>Fibrix Cloud</small></p></body></html>
`))

func page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct{ Title, Text string }{title, text})
}

type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
