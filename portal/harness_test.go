package portal

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// env is a portal on a fresh SQLite database.
type env struct {
	t   testing.TB
	srv *Server
	st  *store.Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, filepath.Join(t.TempDir(), "fibrix.db"))
}

// newEnvOn builds a portal on the database at url (SQLite path or PostgreSQL DSN).
func newEnvOn(t testing.TB, url string) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := store.Open(ctx, url, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, Config{PasswordCost: 4, Version: "test"}, st, log)
	if err != nil {
		t.Fatal(err)
	}
	addHost(t, st)
	return &env{t: t, srv: srv, st: st}
}

func (e *env) do(req *http.Request) *http.Response {
	e.t.Helper()
	res, err := e.srv.App().Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return res
}

// api sends a JSON request with an optional bearer token and decodes the
// JSON answer into a generic value.
func (e *env) api(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			r = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res := e.do(req)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := map[string]any{}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if raw[0] == '[' {
			out["_list"] = nil
		} else if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return res.StatusCode, out
}

// customer signs up a tenant through the API and returns its session token.
func (e *env) customer(tenant, email string) string {
	e.t.Helper()
	code, body := e.api("POST", "/api/v1/auth/signup", "", map[string]string{"tenant": tenant, "email": email, "password": "correct horse battery"})
	if code != http.StatusCreated {
		e.t.Fatalf("signup %s: %d %v", email, code, body)
	}
	return body["token"].(string)
}

// staff creates a staff user with role and returns a session token.
func (e *env) staff(role string) string {
	e.t.Helper()
	hash, err := e.srv.hashPassword("staff password 1")
	if err != nil {
		e.t.Fatal(err)
	}
	email := role + "-" + randomString(4) + "@isp.example"
	u, err := e.st.CreateStaff(context.Background(), store.Actor{Email: "test"}, strings.ToLower(email), hash, role)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := e.srv.issueSession(context.Background(), u, store.SessionAPI, "192.0.2.1", "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// image registers an image the way staff would.
func (e *env) image(name string) store.Image {
	e.t.Helper()
	im, err := e.st.CreateImage(context.Background(), store.Actor{Email: "test"}, store.ImageInput{
		Name: name, OS: "Debian", Version: "12", SourceURL: "https://images.example.com/" + name + ".qcow2",
		Checksum: strings.Repeat("ab", 32), Enabled: true,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return im
}

// pubKey returns a fresh ed25519 public key in authorized_keys format.
func pubKey(t testing.TB, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

// browser is a cookie-keeping client for the HTML pages.
type browser struct {
	e       *env
	cookies map[string]string
}

func (e *env) browser() *browser { return &browser{e: e, cookies: map[string]string{}} }

func (b *browser) send(req *http.Request) *http.Response {
	b.e.t.Helper()
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res := b.e.do(req)
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return res
}

// get fetches a page and parses it.
func (b *browser) get(path string) (*http.Response, *goquery.Document) {
	b.e.t.Helper()
	res := b.send(httptest.NewRequest("GET", path, nil))
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return res, doc
}

// csrf makes sure the pre-session cookie exists and returns the form token
// the portal expects from this browser now.
func (b *browser) csrf() string {
	anon, sess := b.e.srv.cookieName(csrfCookie), b.e.srv.cookieName(sessionCookie)
	if b.cookies[anon] == "" {
		b.get("/login")
	}
	var sid string
	if raw := b.cookies[sess]; raw != "" {
		if c, err := b.e.srv.parseSession(raw); err == nil {
			if _, err := b.e.st.ActiveSession(context.Background(), c.ID); err == nil {
				sid = c.ID
			}
		}
	}
	return b.e.srv.csrfToken(b.cookies[anon], sid)
}

// post submits a urlencoded form with the CSRF token and parses the answer
// (the redirect is not followed).
func (b *browser) post(path string, form url.Values) (*http.Response, *goquery.Document) {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", b.csrf())
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := b.send(req)
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return res, doc
}

// postMultipart submits a multipart form with one file field.
func (b *browser) postMultipart(path string, fields map[string]string, fileField, fileName string, file []byte) (*http.Response, *goquery.Document) {
	b.e.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("_csrf", b.csrf())
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	if fileField != "" {
		fw, _ := w.CreateFormFile(fileField, fileName)
		_, _ = fw.Write(file)
	}
	_ = w.Close()
	req := httptest.NewRequest("POST", path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	res := b.send(req)
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return res, doc
}

// login signs the browser in through the login form.
func (b *browser) login(email, password string) {
	b.e.t.Helper()
	res, _ := b.post("/login", url.Values{"email": {email}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("login %s: status %d", email, res.StatusCode)
	}
}

// signup creates a tenant through the sign-up form and stays signed in.
func (b *browser) signup(tenant, email string) {
	b.e.t.Helper()
	res, _ := b.post("/signup", url.Values{"tenant": {tenant}, "email": {email}, "password": {"correct horse battery"}, "password_confirm": {"correct horse battery"}})
	if res.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("signup %s: status %d", email, res.StatusCode)
	}
}

// staffBrowser returns a browser signed in as a new staff member with role.
func (e *env) staffBrowser(role string) *browser {
	b := e.browser()
	b.cookies[sessionCookie] = e.staff(role)
	return b
}

// addHost registers a large, discovered VM host so that orders can be placed.
func addHost(t testing.TB, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	h, err := st.CreateHost(ctx, store.Actor{Email: "test"}, store.HostInput{Name: "kvm-1", URI: "test:///default"})
	if err != nil {
		t.Fatal(err)
	}
	facts := store.Facts{CPUModel: "test", Cores: 256, MemoryMiB: 4 << 20, DiskGiB: 1 << 20, DiskFreeGiB: 1 << 20}
	if err := st.RecordHostFacts(ctx, h.ID, facts, ""); err != nil {
		t.Fatal(err)
	}
}
