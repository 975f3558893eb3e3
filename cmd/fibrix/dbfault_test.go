package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// The PostgreSQL outage: how long the server stays down, how soon the same
// portal must answer again once it is back, and how long a client waits
// for any answer.
const (
	outageLength   = 20 * time.Second
	recoveryLimit  = 15 * time.Second
	faultClientMax = 15 * time.Second
)

// TestPostgresOutage runs `fibrix serve` (portal and provisioner) on a
// PostgreSQL server of its own, keeps customers' API clients and a browser
// busy, stops the server for 20 s and starts it again. While it is down
// every answer must be a prompt 503 with Retry-After (the API's JSON error,
// the error page for pages, "unavailable" from /healthz), never a 500 or a
// hang; afterwards the same process must serve again by itself, and every
// write acknowledged with a 2xx at any time must be in the database.
func TestPostgresOutage(t *testing.T) {
	// A cluster of the test's own, which it may stop and start (the shared
	// test cluster of pgtest must stay up).
	pg := pgtest.NewCluster(t)
	bin := buildBinary(t)
	work := t.TempDir()
	// A password the server never asks for (trust authentication): it must
	// not show up in any log line.
	const dsnSecret = "dsn-secret-Zq8vX2"
	dsn := pg.DSN() + " password=" + dsnSecret
	if out, err := exec.Command(bin, "migrate", "--database-url", dsn, "--data-dir", work).CombinedOutput(); err != nil {
		t.Fatalf("fibrix migrate: %v\n%s", err, out)
	}
	srv := startFaultServer(t, bin, filepath.Join(work, "serve"), "--database-url", dsn)
	staff := srv.staffClient(t)
	staff.must(t, "PUT", "/admin/quota-defaults", map[string]int64{"instances": 5, "vcpus": 8, "memory_mib": 16384,
		"disk_gib": 200, "ssh_keys": 1000, "port_forwards": 5}, 200)
	owner := srv.signUp(t, "Outage Shop", "owner@outage.example", "")
	browser := srv.browserLogin(t, "owner@outage.example")

	var (
		rec  faultRecorder
		keys faultKeys
	)
	stopTraffic := make(chan struct{})
	var (
		wg       sync.WaitGroup
		stopOnce sync.Once
	)
	halt := func() {
		stopOnce.Do(func() { close(stopTraffic) })
		wg.Wait()
	}
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopTraffic:
					return
				default:
				}
				rec.add(owner.do("GET", "/vms", nil))
				keys.createAndDelete(&rec, owner, fmt.Sprintf("w%d-%d", w, n), n%2 == 0)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stopTraffic:
				return
			default:
			}
			rec.add(browser.page("/vms"))
			rec.add(browser.page("/ssh-keys"))
			rec.add(srv.health())
			time.Sleep(100 * time.Millisecond)
		}
	})
	defer func() {
		halt()
		if t.Failed() {
			t.Logf("server log, last lines:\n%s", lastLines(srv.logText(), 60))
		}
	}()

	time.Sleep(3 * time.Second)
	var ph faultPhases
	ph.stopBegin = time.Now()
	pg.Stop(t)
	ph.stopDone = time.Now()
	t.Logf("PostgreSQL stopped in %s", ph.stopDone.Sub(ph.stopBegin).Round(time.Millisecond))
	time.Sleep(outageLength)
	if !srv.running() {
		t.Fatalf("fibrix serve exited during the outage:\n%s", lastLines(srv.logText(), 40))
	}
	ph.startBegin = time.Now()
	pg.Start(t)
	ph.startDone = time.Now()
	t.Logf("PostgreSQL started again in %s", ph.startDone.Sub(ph.startBegin).Round(time.Millisecond))

	// The same process answers again within recoveryLimit, with no restart.
	for {
		h, a := srv.health(), owner.do("GET", "/ssh-keys", nil)
		rec.add(h)
		rec.add(a)
		if h.status == 200 && a.status == 200 {
			ph.recovered = time.Now()
			break
		}
		if time.Since(ph.startDone) > recoveryLimit {
			t.Fatalf("not recovered %s after PostgreSQL came back: healthz %d, API %d %s", recoveryLimit, h.status, a.status, a.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("serving again %s after PostgreSQL was back", ph.recovered.Sub(ph.startDone).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	halt()

	if !srv.running() {
		t.Fatalf("fibrix serve exited:\n%s", lastLines(srv.logText(), 40))
	}
	counts := ph.check(t, rec.all())
	t.Logf("answers: %v", counts)
	if counts["outage 503"] < 20 {
		t.Errorf("only %d answers seen while the database was down; the test drove too little traffic", counts["outage 503"])
	}

	// Every acknowledged write is in the database, every acknowledged
	// delete is gone from it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	rows, err := db.Query(ctx, `SELECT id FROM ssh_keys`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	keys.check(t, ids)

	// The server log: the outage is told at warn level, without the DSN's
	// password, and no request failed as a server fault.
	logText := srv.logText()
	if strings.Contains(logText, dsnSecret) {
		t.Error("the database password appears in the server log")
	}
	if !strings.Contains(logText, `level=WARN msg="request failed: database unavailable"`) {
		t.Error("the log has no warning about requests that met the unreachable database")
	}
	for _, line := range strings.Split(logText, "\n") {
		if strings.Contains(line, `msg="request failed"`) || strings.Contains(line, "status=500") {
			t.Errorf("a request failed as a server fault: %s", line)
		}
	}
	t.Logf("server log lines at warn and error level: %v", logLevels(logText))
	srv.stop(t)
}

var logLine = regexp.MustCompile(`level=(WARN|ERROR) msg=("[^"]*"|\S+)(?: .*component=(\S+))?`)

// logLevels counts the warn and error lines of a text log by level,
// message and component.
func logLevels(text string) map[string]int {
	n := map[string]int{}
	for _, m := range logLine.FindAllStringSubmatch(text, -1) {
		k := m[1] + " " + m[2]
		if m[3] != "" {
			k += " (" + m[3] + ")"
		}
		n[k]++
	}
	return n
}

// faultPhases are the moments of an outage.
type faultPhases struct {
	stopBegin, stopDone, startBegin, startDone, recovered time.Time
}

// check holds every answer to what its moment allows and returns the
// count of answers by phase and status.
func (ph faultPhases) check(t *testing.T, all []faultResult) map[string]int {
	t.Helper()
	counts := map[string]int{}
	bad := 0
	fail := func(r faultResult, why string) {
		bad++
		if bad <= 20 {
			t.Errorf("%s %s at %s (%s into the outage): %s: %d %s %.300s", r.method, r.path, r.start.Format("15:04:05.000"),
				r.start.Sub(ph.stopBegin).Round(time.Millisecond), why, r.status, r.err, r.body)
		}
	}
	for _, r := range all {
		if r.err != nil {
			fail(r, "no answer")
			continue
		}
		if took := r.end.Sub(r.start); took > 5*time.Second {
			fail(r, fmt.Sprintf("answered after %s", took.Round(time.Millisecond)))
		}
		phase := "transition"
		switch {
		case r.end.Before(ph.stopBegin):
			phase = "before"
		case r.start.After(ph.stopDone) && r.end.Before(ph.startBegin):
			phase = "outage"
		case r.start.After(ph.recovered):
			phase = "after"
		}
		counts[phase+" "+strconv.Itoa(r.status)]++
		ok2xx := r.status >= 200 && r.status < 300
		switch {
		case phase == "outage" && r.status != http.StatusServiceUnavailable:
			fail(r, "want 503 while the database is down")
		case (phase == "before" || phase == "after") && !ok2xx:
			fail(r, "want a 2xx while the database is up")
		case !ok2xx && r.status != http.StatusServiceUnavailable:
			fail(r, "want a 2xx or 503")
		}
		if r.status == http.StatusServiceUnavailable {
			if why := r.unavailableProblem(); why != "" {
				fail(r, why)
			}
		}
	}
	if bad > 20 {
		t.Errorf("… and %d more", bad-20)
	}
	return counts
}

// faultResult is one answer, or the failure to get one.
type faultResult struct {
	kind         string // "api", "page" or "health"
	method, path string
	status       int
	header       http.Header
	body         []byte
	err          error
	start, end   time.Time
}

// unavailableProblem tells what is wrong with a 503, or "".
func (r faultResult) unavailableProblem() string {
	// healthz is for monitors, which keep their own pace.
	if r.kind != "health" && r.header.Get("Retry-After") != "5" {
		return fmt.Sprintf("Retry-After %q, want 5", r.header.Get("Retry-After"))
	}
	switch r.kind {
	case "api":
		var e struct {
			Error struct {
				Code, Message string
				RequestID     string `json:"request_id"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.body, &e); err != nil {
			return "503 without the JSON error body: " + err.Error()
		}
		if e.Error.Code != "unavailable" || !strings.Contains(e.Error.Message, "database is unreachable") ||
			!strings.Contains(e.Error.Message, "try again") || e.Error.RequestID == "" {
			return fmt.Sprintf("error body %+v, want code unavailable saying the database is unreachable and to try again", e.Error)
		}
	case "page":
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !bytes.Contains(r.body, []byte("database is unreachable")) {
			return "503 without the error page saying the database is unreachable"
		}
	case "health":
		var h struct{ Status string }
		if json.Unmarshal(r.body, &h) != nil || h.Status != "unavailable" {
			return "healthz does not say unavailable"
		}
	}
	return ""
}

// faultRecorder collects results from many goroutines.
type faultRecorder struct {
	mu  sync.Mutex
	res []faultResult
}

func (r *faultRecorder) add(res faultResult) {
	r.mu.Lock()
	r.res = append(r.res, res)
	r.mu.Unlock()
}

func (r *faultRecorder) all() []faultResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.res)
}

// faultKeys tracks the SSH keys clients were told were created and deleted.
type faultKeys struct {
	mu      sync.Mutex
	created map[string]string // id → name
	deleted map[string]bool
}

// createAndDelete adds a key named name and then deletes it, recording
// what the server acknowledged. A key whose delete was not acknowledged is
// left for the final check.
func (k *faultKeys) createAndDelete(rec *faultRecorder, c *faultClient, name string, keep bool) {
	res := c.do("POST", "/ssh-keys", map[string]string{"name": name, "public_key": newAuthorizedKey(name)})
	rec.add(res)
	var key struct{ ID string }
	if res.status != http.StatusCreated || json.Unmarshal(res.body, &key) != nil || key.ID == "" {
		return
	}
	k.mu.Lock()
	if k.created == nil {
		k.created, k.deleted = map[string]string{}, map[string]bool{}
	}
	k.created[key.ID] = name
	k.mu.Unlock()
	if keep {
		return
	}
	res = c.do("DELETE", "/ssh-keys/"+key.ID, nil)
	rec.add(res)
	if res.status == http.StatusNoContent || res.status == http.StatusOK {
		k.mu.Lock()
		k.deleted[key.ID] = true
		k.mu.Unlock()
	}
}

// check compares the acknowledged keys with the ids in the database.
func (k *faultKeys) check(t *testing.T, ids []string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	in := map[string]bool{}
	for _, id := range ids {
		in[id] = true
	}
	missing, kept := 0, 0
	for id, name := range k.created {
		switch {
		case k.deleted[id] && in[id]:
			t.Errorf("ssh key %s (%s): the delete was acknowledged but the key is still there", id, name)
		case !k.deleted[id] && !in[id]:
			missing++
			t.Errorf("ssh key %s (%s): the create was acknowledged but the key is not in the database", id, name)
		case !k.deleted[id]:
			kept++
		}
	}
	t.Logf("ssh keys: %d creates and %d deletes acknowledged, %d kept, %d missing", len(k.created), len(k.deleted), kept, missing)
	if len(k.created) == 0 {
		t.Error("no ssh key create was acknowledged")
	}
}

func newAuthorizedKey(comment string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

// faultClient is one API client of the portal: a bearer token and an HTTP
// client that gives up after faultClientMax.
type faultClient struct {
	base  string
	token string
	http  *http.Client
}

func newFaultClient(base, token string) *faultClient {
	return &faultClient{base: base, token: token, http: &http.Client{Timeout: faultClientMax,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
}

func (c *faultClient) do(method, path string, body any) faultResult {
	res := faultResult{kind: "api", method: method, path: path, start: time.Now()}
	defer func() { res.end = time.Now() }()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if err != nil {
		res.err = err
		return res
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res.status, res.header, res.body, res.err = send(c.http, req)
	res.end = time.Now()
	return res
}

func (c *faultClient) must(t *testing.T, method, path string, body any, want int) []byte {
	t.Helper()
	res := c.do(method, path, body)
	if res.err != nil || res.status != want {
		t.Fatalf("%s %s: %d %v %s, want %d", method, path, res.status, res.err, res.body, want)
	}
	return res.body
}

func send(c *http.Client, req *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// faultBrowser is a signed-in browser: a session cookie, no redirects
// followed, so that a page that signs it out shows.
type faultBrowser struct {
	base string
	http *http.Client
}

func (b *faultBrowser) page(path string) faultResult {
	res := faultResult{kind: "page", method: "GET", path: path, start: time.Now()}
	req, _ := http.NewRequest("GET", b.base+path, nil)
	res.status, res.header, res.body, res.err = send(b.http, req)
	res.end = time.Now()
	return res
}

// faultServer is one running `fibrix serve` whose output goes to a file.
type faultServer struct {
	url                 string
	staffEmail, staffPW string
	logPath             string
	cmd                 *exec.Cmd
	exited              chan struct{}
	waitErr             error
	health              func() faultResult
}

var faultPortalURL = regexp.MustCompile(`msg="portal listening" url=(http://\S+)`)

// startFaultServer runs `fibrix serve` in dataDir with the given extra
// flags and waits until it serves.
func startFaultServer(t *testing.T, bin, dataDir string, extra ...string) *faultServer {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dataDir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := &faultServer{logPath: f.Name(), exited: make(chan struct{})}
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--metadata-listen", "127.0.0.1:0",
		"--dns-listen", "127.0.0.1:0", "--ssh-gateway-listen", "127.0.0.1:0", "--http-forward-listen", "127.0.0.1:0",
		"--tls-forward-listen", "127.0.0.1:0", "--forward-ports", "60200-60209"}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		f.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop(t) })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out := s.logText()
		if strings.Contains(out, `msg="fibrix serving"`) {
			m := faultPortalURL.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no portal address in the log:\n%s", out)
			}
			s.url = m[1]
			if m := firstStart.FindStringSubmatch(out); m != nil {
				s.staffEmail, s.staffPW = m[2], m[3]
			}
			break
		}
		if !s.running() {
			t.Fatalf("fibrix serve exited before serving (%v):\n%s", s.waitErr, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("fibrix serve not serving within 60 s:\n%s", out)
		}
	}
	hc := &http.Client{Timeout: faultClientMax}
	s.health = func() faultResult {
		res := faultResult{kind: "health", method: "GET", path: "/healthz", start: time.Now()}
		req, _ := http.NewRequest("GET", s.url+"/healthz", nil)
		res.status, res.header, res.body, res.err = send(hc, req)
		res.end = time.Now()
		return res
	}
	return s
}

func (s *faultServer) logText() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *faultServer) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop ends the server with SIGTERM, as an operator does, and expects a
// clean exit.
func (s *faultServer) stop(t *testing.T) {
	if !s.running() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Errorf("fibrix serve exited with %v after SIGTERM", s.waitErr)
		}
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Error("fibrix serve did not stop within 20 s of SIGTERM")
	}
}

// staffClient signs in with the account created on first start.
func (s *faultServer) staffClient(t *testing.T) *faultClient {
	t.Helper()
	if s.staffEmail == "" {
		t.Fatalf("the server printed no first staff account:\n%s", s.logText())
	}
	return s.login(t, s.staffEmail, s.staffPW)
}

const faultPassword = "correct horse battery staple"

func (s *faultServer) login(t *testing.T, email, password string) *faultClient {
	t.Helper()
	var sess struct{ Token string }
	body := newFaultClient(s.url, "").must(t, "POST", "/auth/login", map[string]string{"email": email, "password": password}, 200)
	if err := json.Unmarshal(body, &sess); err != nil || sess.Token == "" {
		t.Fatalf("login %s: %s", email, body)
	}
	return newFaultClient(s.url, sess.Token)
}

// signUp creates a tenant and its owner and returns the owner's client;
// from, when set, is the local address its connections come from (the
// portal budgets sign-ups per address).
func (s *faultServer) signUp(t *testing.T, tenant, email, from string) *faultClient {
	t.Helper()
	c := newFaultClient(s.url, "")
	if from != "" {
		c.http = regionClient(from)
		c.http.Timeout = faultClientMax
	}
	var sess struct{ Token string }
	body := c.must(t, "POST", "/auth/signup", map[string]string{"tenant": tenant, "email": email, "password": faultPassword}, 201)
	if err := json.Unmarshal(body, &sess); err != nil || sess.Token == "" {
		t.Fatalf("sign up %s: %s", email, body)
	}
	c.token = sess.Token
	return c
}

// browserLogin signs in through the login form, as a browser does.
func (s *faultServer) browserLogin(t *testing.T, email string) *faultBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: faultClientMax}
	res, err := c.Get(s.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("the login page carries no form token: %.300s", page)
	}
	res, err = c.PostForm(s.url+"/login", url.Values{"email": {email}, "password": {faultPassword}, "_csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path == "/login" {
		t.Fatalf("browser login landed on %s with %d: %.300s", res.Request.URL.Path, res.StatusCode, body)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &faultBrowser{base: s.url, http: c}
}
