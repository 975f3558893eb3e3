package metadata_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"golang.org/x/crypto/ssh"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fibrixcloud/fibrix/provisioner/metadata"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// fuzzVM is a VM with values that appear nowhere else, so that another
// VM's answer holding one of them is a leak.
type fuzzVM struct {
	id, token, name, key, mac, addr, userData string
}

// markers are the values only this VM's documents may hold.
func (v fuzzVM) markers() []string {
	return []string{v.id, v.token, v.name, v.key, v.mac, v.addr, v.userData}
}

// newFuzzLab is newLab and newVM of server_test.go for a *testing.F: a
// real SQLite store with two tenants' VMs on one subnet.
func newFuzzLab(f *testing.F) (*store.Store, fuzzVM, fuzzVM) {
	f.Helper()
	ctx := context.Background()
	path := filepath.Join(f.TempDir(), "fibrix.db")
	st, err := store.Open(ctx, path, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	raw, err := gorm.Open(sqlite.Open("file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		f.Fatal(err)
	}
	sqlDB, _ := raw.DB()
	f.Cleanup(func() { _ = sqlDB.Close() })
	ts := time.Now().UTC()
	for _, q := range []string{
		`INSERT INTO subnets (id, name, cidr, gateway, dns_servers, range_start, range_end, created_at, updated_at) VALUES
			('lan', 'lan', '10.20.0.0/24', '10.20.0.1', '10.20.0.1,9.9.9.9', '10.20.0.10', '10.20.0.200', ?, ?)`,
		`INSERT INTO hosts (id, name, uri, state, cores, memory_mib, disk_gib, disk_free_gib, created_at, updated_at)
			VALUES ('h1', 'kvm-1', 'test:///default', 'ready', 64, 262144, 4096, 4096, ?, ?)`,
	} {
		if err := raw.Exec(q, ts, ts).Error; err != nil {
			f.Fatal(err)
		}
	}
	if _, err := st.CreateImage(ctx, store.Actor{Email: "staff@example.com"}, store.ImageInput{
		Name: "debian-12", OS: "Debian", Version: "12", SourceURL: "https://images.example.com/debian-12.qcow2",
		Checksum: "sha256:" + fmt.Sprintf("%064x", 1), Enabled: true,
	}); err != nil {
		f.Fatal(err)
	}
	newVM := func(seed byte, tenant, name, userData, mac, addr string) fuzzVM {
		ten, u, err := st.SignUp(ctx, store.Actor{}, tenant, tenant+"@example.com", "hash")
		if err != nil {
			f.Fatal(err)
		}
		a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
		pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public())
		if err != nil {
			f.Fatal(err)
		}
		k, err := st.AddSSHKey(ctx, a, ten.ID, "laptop", string(ssh.MarshalAuthorizedKey(pub)))
		if err != nil {
			f.Fatal(err)
		}
		v, err := st.CreateVM(ctx, a, ten.ID, store.VMOrder{Name: name, Plan: "nano", Image: "debian-12", SSHKeys: []string{k.ID}, UserData: userData})
		if err != nil {
			f.Fatal(err)
		}
		tok, err := st.EnsureMetadataToken(ctx, v.ID)
		if err != nil {
			f.Fatal(err)
		}
		if err := raw.Exec(`UPDATE vms SET mac = ? WHERE id = ?`, mac, v.ID).Error; err != nil {
			f.Fatal(err)
		}
		if err := raw.Exec(`INSERT INTO ip_addresses (subnet_id, address, vm_id, created_at) VALUES ('lan', ?, ?, ?)`, addr, v.ID, ts).Error; err != nil {
			f.Fatal(err)
		}
		// The key as it is stored, without its comment.
		key := strings.Fields(k.PublicKey)[1]
		return fuzzVM{v.ID, tok, name, key, mac, addr, userData}
	}
	a := newVM(1, "alpha", "alphaweb", "#cloud-config\nruncmd: [touch /alpha-marker-3e1]\n", "52:54:00:00:00:0a", "10.20.0.11")
	b := newVM(2, "bravo", "bravodb", "#!/bin/sh\necho bravo-marker-9d2\n", "52:54:00:00:00:0b", "10.20.0.12")
	return st, a, b
}

// FuzzRequest fuzzes the method, request target and source address of
// requests to the handler, with "{A}" and "{B}" in the target standing for
// the two VMs' tokens. The service answers only 200, 403, 404 or 405; a
// 200 comes only for exactly /{token}/{document} from that token's VM's
// address and holds that VM's data and nothing of the other's.
func FuzzRequest(f *testing.F) {
	st, a, b := newFuzzLab(f)
	srv, err := metadata.New(metadata.Config{Zone: "cloud.internal"}, st, nil)
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
