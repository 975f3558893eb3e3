package metadata_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/metadata"
)

// fuzzVM is a VM of newLab with values that appear nowhere else, so that
// another VM's answer holding one of them is a leak.
type fuzzVM struct {
	vm
	name, userData string
}

// markers are the values only this VM's documents may hold.
func (v fuzzVM) markers() []string {
	// The key without its type, in case an answer held it in another form.
	return []string{v.id, v.token, v.name, strings.Fields(v.key)[1], v.mac, v.addr, v.userData}
}

// FuzzRequest fuzzes the method, request target and source address of
// requests to the handler, with "{A}" and "{B}" in the target standing for
// the two VMs' tokens. The service answers only 200, 403, 404 or 405; a
// 200 comes only for exactly /{token}/{document} from that token's VM's
// address and holds that VM's data and nothing of the other's.
func FuzzRequest(f *testing.F) {
	l := newLab(f)
	newVM := func(tenant, name, userData, mac, addr string) fuzzVM {
		return fuzzVM{l.newVM(f, tenant, name, userData, mac, "lan", addr), name, userData}
	}
	a := newVM("alpha", "alphaweb", "#cloud-config\nruncmd: [touch /alpha-marker-3e1]\n", "52:54:00:00:00:0a", "10.20.0.11")
	b := newVM("bravo", "bravodb", "#!/bin/sh\necho bravo-marker-9d2\n", "52:54:00:00:00:0b", "10.20.0.12")
	srv, err := metadata.New(metadata.Config{Zone: "cloud.internal"}, l.st, nil)
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	sources := []string{a.addr, b.addr, "::ffff:" + a.addr, "192.0.2.7", "127.0.0.1", "::1", "fe80::1%eth0"}
	tokens := strings.NewReplacer("{A}", a.token, "{B}", b.token, "{a}", strings.ToLower(a.token), "{A+}", a.token+"=")

	for _, s := range []struct {
		method, target string
		from           uint8
	}{
		{"GET", "/{A}/meta-data", 0},
		{"GET", "/{A}/user-data", 0},
		{"HEAD", "/{A}/user-data", 0},
		{"GET", "/{A}/vendor-data", 0},
		{"GET", "/{B}/network-config", 1},
		{"GET", "/{B}/user-data", 0},
		{"GET", "/{A}/meta-data", 2},
		{"GET", "/{A}/meta-data", 3},
		{"GET", "/{a}/meta-data", 0},
		{"GET", "/{A+}/meta-data", 0},
		{"GET", "/{B}/../{A}/meta-data", 0},
		{"GET", "/{A}/../{B}/user-data", 0},
		{"GET", "/{A}%2F..%2F{B}/user-data", 0},
		{"GET", "/{A}/meta-data/../../{B}/user-data", 0},
		{"GET", "//{A}/meta-data", 0},
		{"GET", "/{A}//meta-data", 0},
		{"GET", "/{A}/meta%2Ddata", 0},
		{"GET", "http://169.254.169.254/{A}/meta-data", 0},
		{"GET", "/{A}/meta-data?x=/{B}/user-data#frag", 0},
		{"GET", "/latest/meta-data/", 0},
		{"GET", "/{A}/meta-data\x00", 0},
		{"POST", "/{A}/user-data", 0},
		{"OPTIONS", "*", 0},
		{"GET", "/", 0},
		{"GET", "/" + strings.Repeat("A", 43) + "/meta-data", 0},
	} {
		f.Add(s.method, s.target, s.from)
	}
	f.Fuzz(func(t *testing.T, method, target string, from uint8) {
		target = tokens.Replace(target)
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: metadata\r\n\r\n")))
		if err != nil {
			// net/http answers 400 itself; the handler never sees it.
			return
		}
		src := sources[int(from)%len(sources)]
		req.RemoteAddr = net.JoinHostPort(src, "40000")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()

		switch rec.Code {
		case http.StatusOK, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("%s %q from %s: status %d: %s", method, target, src, rec.Code, body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
		}
		for _, tok := range []string{a.token, b.token} {
			if strings.Contains(body, tok) {
				t.Fatalf("a token is in the answer:\n%s", body)
			}
		}
		if rec.Code != http.StatusOK {
			return
		}

		// Which VM's document this may be, judged without the handler.
		tok, doc, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
		var own, other fuzzVM
		switch tok {
		case a.token:
			own, other = a, b
		case b.token:
			own, other = b, a
		default:
			t.Fatalf("%s %q (path %q) answered 200 without a VM's token", method, target, req.URL.Path)
		}
		if !strings.HasPrefix(req.URL.Path, "/") || !map[string]bool{"meta-data": true, "user-data": true, "vendor-data": true, "network-config": true}[doc] {
			t.Fatalf("path %q answered 200", req.URL.Path)
		}
		if method != "GET" && method != "HEAD" {
			t.Fatalf("method %q answered 200", method)
		}
		if addr, err := netip.ParseAddr(src); err != nil || addr.Unmap().String() != own.addr {
			t.Fatalf("%s's %s answered to %s", own.name, doc, src)
		}
		for _, m := range other.markers() {
			if strings.Contains(body, m) {
				t.Fatalf("%s's %s holds %q of %s:\n%s", own.name, doc, m, other.name, body)
			}
		}
		if method == "HEAD" {
			if body != "" {
				t.Fatalf("HEAD answered with a body")
			}
			return
		}
		want := map[string]string{"meta-data": own.id, "user-data": own.key, "network-config": own.mac}[doc]
		if !strings.Contains(body, want) {
			t.Fatalf("%s's %s lacks %q:\n%s", own.name, doc, want, body)
		}
		if doc == "vendor-data" && body != "" {
			t.Fatalf("vendor-data is not empty")
		}
	})
}
