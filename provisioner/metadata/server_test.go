package metadata_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
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

// lab is a real SQLite store plus a plain connection that writes the rows
// other provisioner parts own (subnets, addresses, MACs).
type lab struct {
	st  *store.Store
	raw *gorm.DB
}

func newLab(t testing.TB) lab {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fibrix.db")
	st, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := gorm.Open(sqlite.Open("file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := raw.DB()
	t.Cleanup(func() { _ = sqlDB.Close() })
	ts := time.Now().UTC()
	if err := raw.Exec(`INSERT INTO subnets (id, name, cidr, gateway, dns_servers, range_start, range_end, created_at, updated_at) VALUES
		('lan', 'lan', '10.20.0.0/24', '10.20.0.1', '10.20.0.1,9.9.9.9', '10.20.0.10', '10.20.0.200', ?, ?),
		('lo', 'lo', '127.0.0.0/8', '', '', '127.0.0.1', '127.0.0.1', ?, ?)`, ts, ts, ts, ts).Error; err != nil {
		t.Fatal(err)
	}
	// A ready KVM host with room, so orders can be placed.
	if err := raw.Exec(`INSERT INTO hosts (id, name, uri, state, cores, memory_mib, disk_gib, disk_free_gib, created_at, updated_at)
		VALUES ('h1', 'kvm-1', 'test:///default', 'ready', 64, 262144, 4096, 4096, ?, ?)`, ts, ts).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateImage(ctx, store.Actor{Email: "staff@example.com"}, store.ImageInput{
		Name: "debian-12", OS: "Debian", Version: "12", SourceURL: "https://images.example.com/debian-12.qcow2",
		Checksum: "sha256:" + fmt.Sprintf("%064x", 1), Enabled: true,
	}); err != nil {
		t.Fatal(err)
	}
	return lab{st, raw}
}

type vm struct {
	id, token, key, mac, addr string
}

// newVM signs up a tenant with one key and orders a VM; addr "" leaves it
// without an address.
func (l lab) newVM(t testing.TB, tenant, name, userData, mac, subnet, addr string) vm {
	t.Helper()
	ctx := context.Background()
	ten, u, err := l.st.SignUp(ctx, store.Actor{}, tenant, tenant+"@example.com", "hash")
	if err != nil {
		t.Fatal(err)
	}
	a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
	k, err := l.st.AddSSHKey(ctx, a, ten.ID, "laptop", pubKey(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := l.st.CreateVM(ctx, a, ten.ID, store.VMOrder{Name: name, Plan: "nano", Image: "debian-12", SSHKeys: []string{k.ID}, UserData: userData})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l.st.EnsureMetadataToken(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.raw.Exec(`UPDATE vms SET mac = ? WHERE id = ?`, mac, v.ID).Error; err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		if err := l.raw.Exec(`INSERT INTO ip_addresses (subnet_id, address, vm_id, created_at) VALUES (?, ?, ?, ?)`, subnet, addr, v.ID, time.Now().UTC()).Error; err != nil {
			t.Fatal(err)
		}
	}
	return vm{v.ID, tok, strings.TrimSpace(k.PublicKey), mac, addr}
}

func pubKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(sp))
}

func newServer(t *testing.T, st metadata.Store, cfg metadata.Config, logs io.Writer) *metadata.Server {
	t.Helper()
	cfg.Zone = "cloud.internal"
	s, err := metadata.New(cfg, st, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(h http.Handler, method, path, from string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = net.JoinHostPort(from, "40000")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// yamlMap reads flat "key: value" YAML, unquoting double-quoted values.
func yamlMap(t *testing.T, doc string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for line := range strings.Lines(doc) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \"'") {
			t.Fatalf("not a flat YAML mapping line: %q", line)
		}
		if strings.HasPrefix(v, `"`) {
			if err := json.Unmarshal([]byte(v), &v); err != nil {
				t.Fatalf("bad quoted value %q: %v", v, err)
			}
		}
		out[k] = v
	}
	return out
}

type part struct{ ctype, body string }

// parseMultipart reads user-data the way cloud-init does: a MIME message
// with its own headers.
func parseMultipart(t *testing.T, rec *httptest.ResponseRecorder) []part {
	t.Helper()
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(rec.Body.Bytes())))
	if err != nil {
		t.Fatalf("user-data is not a MIME message: %v", err)
	}
	ct := msg.Header.Get("Content-Type")
	if ct != rec.Header().Get("Content-Type") {
		t.Errorf("body Content-Type %q differs from HTTP %q", ct, rec.Header().Get("Content-Type"))
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q: %v", ct, err)
	}
	var parts []part
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts = append(parts, part{pt, string(b)})
	}
	return parts
}

func TestHandler(t *testing.T) {
	l := newLab(t)
	a := l.newVM(t, "alpha", "web", "", "52:54:00:00:00:0a", "lan", "10.20.0.11")
	b := l.newVM(t, "bravo", "db", "#cloud-config\npackages: [postgresql]\n", "52:54:00:00:00:0b", "lan", "10.20.0.12")
	c := l.newVM(t, "charlie", "job", "#!/bin/sh\necho hello > /tmp/x\n", "52:54:00:00:00:0c", "lan", "10.20.0.13")
	noAddr := l.newVM(t, "delta", "new", "", "52:54:00:00:00:0d", "", "")
	var logs bytes.Buffer
	h := newServer(t, l.st, metadata.Config{}, &logs).Handler()

	for _, tc := range []struct {
		name, method, path, from string
		want                     int
	}{
		{"own meta-data", "GET", "/" + a.token + "/meta-data", a.addr, 200},
		{"head", "HEAD", "/" + a.token + "/user-data", a.addr, 200},
		{"vendor-data", "GET", "/" + a.token + "/vendor-data", a.addr, 200},
		{"A's token from B's address", "GET", "/" + a.token + "/user-data", b.addr, 403},
		{"B's token from A's address", "GET", "/" + b.token + "/user-data", a.addr, 403},
		{"from elsewhere", "GET", "/" + a.token + "/meta-data", "192.0.2.7", 403},
		{"no address yet", "GET", "/" + noAddr.token + "/meta-data", "10.20.0.14", 403},
		{"unknown token", "GET", "/" + strings.Repeat("A", 43) + "/meta-data", a.addr, 404},
		{"malformed token", "GET", "/x/meta-data", a.addr, 404},
		{"unknown document", "GET", "/" + a.token + "/secrets", a.addr, 404},
		{"extra path", "GET", "/" + a.token + "/meta-data/x", a.addr, 404},
		{"root", "GET", "/", a.addr, 404},
		{"post", "POST", "/" + a.token + "/user-data", a.addr, 405},
		{"put", "PUT", "/" + a.token + "/meta-data", a.addr, 405},
		{"delete", "DELETE", "/" + a.token + "/meta-data", a.addr, 405},
	} {
		rec := get(h, tc.method, tc.path, tc.from)
		if rec.Code != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, rec.Code, tc.want, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q", tc.name, rec.Header().Get("Cache-Control"))
		}
		if tc.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("%s: HEAD has a body", tc.name)
		}
	}
	if rec := get(h, "POST", "/"+a.token+"/user-data", a.addr); rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("405 Allow = %q", rec.Header().Get("Allow"))
	}
	for _, tok := range []string{a.token, b.token, c.token, noAddr.token} {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a token was logged")
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "vm="+a.id) || !strings.Contains(logs.String(), "remote="+b.addr) {
		t.Errorf("refusal not logged with vm and remote address:\n%s", logs.String())
	}

	t.Run("meta-data", func(t *testing.T) {
		rec := get(h, "GET", "/"+a.token+"/meta-data", a.addr)
		got := yamlMap(t, rec.Body.String())
		if got["instance-id"] != a.id || got["local-hostname"] != "web" || len(got) != 2 {
			t.Errorf("meta-data = %v", got)
		}
	})

	t.Run("user-data only ours", func(t *testing.T) {
		rec := get(h, "GET", "/"+a.token+"/user-data", a.addr)
		body := rec.Body.String()
		if !strings.HasPrefix(body, "#cloud-config\n") || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/cloud-config") {
			t.Fatalf("user-data:\n%s", body)
		}
		for _, want := range []string{a.key, `fqdn: "web.alpha.cloud.internal"`, `name: "debian"`, "ssh_pwauth: false", "disable_root: true"} {
			if !strings.Contains(body, want) {
				t.Errorf("user-data lacks %q", want)
			}
		}
		// Isolation: no other VM's key or user data.
		for _, other := range []string{b.key, c.key, noAddr.key, "postgresql", "echo hello"} {
			if strings.Contains(body, other) {
				t.Errorf("VM A's user-data holds another VM's %q", other)
			}
		}
	})

	for _, tc := range []struct {
		name   string
		v      vm
		ctype  string
		theirs string
	}{
		{"cloud-config", b, "text/cloud-config", "#cloud-config\npackages: [postgresql]\n"},
		{"shell script", c, "text/x-shellscript", "#!/bin/sh\necho hello > /tmp/x\n"},
	} {
		t.Run("user-data with customer "+tc.name, func(t *testing.T) {
			parts := parseMultipart(t, get(h, "GET", "/"+tc.v.token+"/user-data", tc.v.addr))
			if len(parts) != 2 {
				t.Fatalf("%d parts, want 2", len(parts))
			}
			if parts[0].ctype != "text/cloud-config" || !strings.Contains(parts[0].body, tc.v.key) || strings.Contains(parts[0].body, a.key) {
				t.Errorf("our part = %+v", parts[0])
			}
			if parts[1] != (part{tc.ctype, tc.theirs}) {
				t.Errorf("customer part = %+v, want %s %q", parts[1], tc.ctype, tc.theirs)
			}
		})
	}

	t.Run("network-config", func(t *testing.T) {
		rec := get(h, "GET", "/"+a.token+"/network-config", a.addr)
		body := rec.Body.String()
		for _, want := range []string{"version: 1", `mac_address: "52:54:00:00:00:0a"`, "type: static", `address: "10.20.0.11/24"`, `gateway: "10.20.0.1"`, `- "9.9.9.9"`} {
			if !strings.Contains(body, want) {
				t.Errorf("network-config lacks %q:\n%s", want, body)
			}
		}
	})

	t.Run("deleted VM", func(t *testing.T) {
		if err := l.raw.Exec(`UPDATE vms SET state = ? WHERE id = ?`, store.VMDeleting, c.id).Error; err != nil {
			t.Fatal(err)
		}
		if rec := get(h, "GET", "/"+c.token+"/meta-data", c.addr); rec.Code != 404 {
			t.Errorf("being deleted: %d", rec.Code)
		}
		if err := l.raw.Exec(`UPDATE vms SET deleted_at = ? WHERE id = ?`, time.Now().UTC(), b.id).Error; err != nil {
			t.Fatal(err)
		}
		if rec := get(h, "GET", "/"+b.token+"/meta-data", b.addr); rec.Code != 404 {
			t.Errorf("deleted: %d", rec.Code)
		}
	})
}

func TestAllowAnySource(t *testing.T) {
	l := newLab(t)
	a := l.newVM(t, "alpha", "web", "", "52:54:00:00:00:0a", "lan", "10.20.0.11")
	noAddr := l.newVM(t, "bravo", "new", "", "52:54:00:00:00:0b", "", "")
	h := newServer(t, l.st, metadata.Config{AllowAnySource: true}, io.Discard).Handler()
	if rec := get(h, "GET", "/"+a.token+"/user-data", "192.0.2.7"); rec.Code != 200 || !strings.Contains(rec.Body.String(), a.key) {
		t.Errorf("through NAT: %d", rec.Code)
	}
	if rec := get(h, "GET", "/"+noAddr.token+"/meta-data", "192.0.2.7"); rec.Code != 200 {
		t.Errorf("meta-data without address: %d", rec.Code)
	}
	if rec := get(h, "GET", "/"+noAddr.token+"/network-config", "192.0.2.7"); rec.Code != 404 {
		t.Errorf("network-config without address: %d, want 404", rec.Code)
	}
}

// TestServeTCP talks to the service over a real loopback socket and stops it.
func TestServeTCP(t *testing.T) {
	l := newLab(t)
	v := l.newVM(t, "alpha", "web", "", "52:54:00:00:00:0a", "lo", "127.0.0.1")
	s := newServer(t, l.st, metadata.Config{}, io.Discard)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/" + v.token + "/meta-data")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), v.id) {
		t.Errorf("GET over TCP: %d %q", resp.StatusCode, body)
	}

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
		t.Logf("Serve stopped %v after cancel", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/" + v.token + "/meta-data"); err == nil {
		t.Error("still answering after shutdown")
	}
}
