package portal

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// fuzzMaxBody is the largest body a fuzz iteration sends to an API route;
// longer inputs are cut, which keeps each iteration and the database small.
const fuzzMaxBody = 4 << 10

// fuzzMaxReport is the largest agent report a fuzz iteration sends, well
// within what the report route takes.
const fuzzMaxReport = 64 << 10

// fuzzContentTypes are the Content-Type headers a fuzz input picks from.
var fuzzContentTypes = []string{
	"application/json",
	"application/json; charset=utf-8",
	"",
	"text/plain",
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=fuzz",
	"application/json-patch+json",
	"APPLICATION/JSON",
}

// fuzzFakeIDs stand for path parameters that name nothing: a well-formed
// id and a segment of escaped bytes.
var fuzzFakeIDs = []string{"00000000-0000-4000-8000-000000000000", "n%C3%B6pe%00%ff..%2F"}

// errorCode is the form of every error code the API answers with.
var errorCode = regexp.MustCompile(`^[a-z][a-z_]*$`)

// checkAPIAnswer fails unless an API answer is well-formed: 2xx with an
// empty or JSON body, or 4xx with the error shape of handleError (an object
// holding only error, with a code and a message and optionally field and
// request_id), a 429 saying when to retry. A 5xx is always a failure: the
// API has no 503 with Retry-After, only the 429 carries one.
func checkAPIAnswer(t *testing.T, what string, res *http.Response, body []byte) {
	t.Helper()
	ct := res.Header.Get("Content-Type")
	switch s := res.StatusCode; {
	case s >= 200 && s < 300:
		if len(body) == 0 {
			return
		}
		if !strings.HasPrefix(ct, "application/json") || !json.Valid(body) {
			t.Fatalf("%s: %d answered %q, not JSON: %.300q", what, s, ct, body)
		}
	case s >= 400 && s < 500:
		if !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s: %d answered %q, not JSON: %.300q", what, s, ct, body)
		}
		var e struct {
			Error *struct {
				Code      string  `json:"code"`
				Message   string  `json:"message"`
				Field     *string `json:"field"`
				RequestID string  `json:"request_id"`
			} `json:"error"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || dec.More() || e.Error == nil {
			t.Fatalf("%s: %d body is not the API error shape (%v): %.300q", what, s, err, body)
		}
		if !errorCode.MatchString(e.Error.Code) || strings.TrimSpace(e.Error.Message) == "" || (e.Error.Field != nil && *e.Error.Field == "") {
			t.Fatalf("%s: %d error lacks a code, message or field: %.300q", what, s, body)
		}
		if s == http.StatusTooManyRequests {
			if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Fatalf("%s: 429 with Retry-After %q", what, res.Header.Get("Retry-After"))
			}
		}
	default:
		t.Fatalf("%s: status %d: %.300q", what, s, body)
	}
}

// fuzzClient sends the fuzz targets' requests to a portal.
type fuzzClient struct {
	e *env
	// hc reaches the same app over an in-memory listener, the way a client
	// over the network does.
	hc *http.Client
}

func newFuzzClient(f *testing.F, e *env) *fuzzClient {
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = e.srv.App().Listener(ln) }()
	f.Cleanup(func() { _ = ln.Close() })
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() }, DisableKeepAlives: true}
	f.Cleanup(tr.CloseIdleConnections)
	return &fuzzClient{e: e, hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// send sends one request through app.Test and returns the answer and its
// body. app.Test gives no answer when the server could not read the request
// (a multipart body that does not parse, say), although the server has
// answered through its error handler; the request is then sent again over
// the listener, so the answer checked is the one a client gets.
func (fc *fuzzClient) send(t *testing.T, method, path, token, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req := func() *http.Request {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req
	}
	res, err := fc.e.srv.App().Test(req(), -1)
	if err != nil {
		r := req()
		r.RequestURI, r.URL.Scheme, r.URL.Host = "", "http", "fibrix.test"
		var err2 error
		if res, err2 = fc.hc.Do(r); err2 != nil {
			t.Fatalf("%s %s: %v, and over the listener: %v", method, path, err, err2)
		}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return res, b
}

// fuzzCaller is a signed-in caller of FuzzAPIBodies.
type fuzzCaller struct {
	name, userID, tenantID, token string
}

// fuzzRoute is an API route that takes a body, in fiber syntax.
type fuzzRoute struct{ method, path string }

// bodyRoutes lists the routes under /api/ that take a body (POST, PUT,
// PATCH), sorted, as the app has them.
func bodyRoutes(e *env) []fuzzRoute {
	var out []fuzzRoute
	for _, r := range e.srv.App().GetRoutes(true) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			continue
		}
		if strings.HasPrefix(r.Path, "/api/") && !slices.Contains(out, fuzzRoute{r.Method, r.Path}) {
			out = append(out, fuzzRoute{r.Method, r.Path})
		}
	}
	slices.SortFunc(out, func(a, b fuzzRoute) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
	return out
}

// apiFuzz is the state FuzzAPIBodies keeps between iterations: the routes,
// the callers, and the concrete paths already resolved for each.
type apiFuzz struct {
	e      *env
	c      *fuzzClient
	routes []fuzzRoute
	admin  *fuzzCaller
	owner  *fuzzCaller
	paths  map[string]string
}

// newAPIFuzz builds a portal with one of each kind of object the API's
// path parameters name, a staff admin and a customer owner.
func newAPIFuzz(f *testing.F) *apiFuzz {
	e := newEnv(f)
	ctx := context.Background()
	fx := &apiFuzz{e: e, c: newFuzzClient(f, e), routes: bodyRoutes(e), paths: map[string]string{}}
	if len(fx.routes) < 30 {
		f.Fatalf("only %d routes take a body", len(fx.routes))
	}
	fx.admin = &fuzzCaller{name: "admin", token: e.staff(store.RoleAdmin)}
	fx.owner = &fuzzCaller{name: "owner", token: e.customer("Fuzz Shop", "owner@fuzz.example")}
	fx.owner.tenantID, fx.owner.userID = e.account(fx.owner.token)
	fx.admin.userID = obj(e.want(http.StatusOK, "GET", "/api/v1/account", fx.admin.token, nil)["user"])["id"].(string)

	// A VM priced and running for two days of last month, and its invoice.
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month()-1, 10, 0, 0, 0, 0, time.UTC)
	e.st.SetClock(func() time.Time { return start })
	var nanoID string
	for _, p := range items(e.want(http.StatusOK, "GET", "/api/v1/plans", fx.owner.token, nil)) {
		if obj(p)["name"] == "nano" {
			nanoID, _ = obj(p)["id"].(string)
		}
	}
	e.want(http.StatusCreated, "POST", "/api/v1/admin/billing/prices", fx.admin.token, map[string]any{"item": "plan:" + nanoID, "hourly": "0.006"})
	e.image("debian-12")
	key := e.addKey(fx.owner.token, "laptop")
	vm := e.order(fx.owner.token, "web", "nano", "debian-12", key)
	runVM(f, e, vm)
	e.st.SetClock(func() time.Time { return start.Add(48 * time.Hour) })
	if _, err := e.st.MeterNow(ctx); err != nil {
		f.Fatal(err)
	}
	e.st.SetClock(time.Now)
	if r := e.want(http.StatusOK, "POST", "/api/v1/admin/billing/invoices/issue", fx.admin.token, map[string]any{"tenant_id": fx.owner.tenantID, "month": start.Format("2006-01")}); r["issued"] != float64(1) {
		f.Fatalf("issue: %v", r)
	}
	failVM(f, e, e.order(fx.owner.token, "broken", "nano", "debian-12", key))
	e.want(http.StatusCreated, "POST", "/api/v1/forwards", fx.owner.token, map[string]any{"vm": vm, "target_port": 22})
	e.want(http.StatusCreated, "POST", "/api/v1/dns/records", fx.owner.token, map[string]any{"name": "www", "type": "A", "value": "192.0.2.1"})
	e.want(http.StatusCreated, "POST", "/api/v1/admin/subnets", fx.admin.token, map[string]any{"name": "fuzz-net", "cidr": "192.0.2.0/24", "range_start": "192.0.2.10", "range_end": "192.0.2.20"})
	sn, err := e.st.CreateBootSubnet(ctx, store.Actor{Email: "test"}, store.BootSubnetInput{Name: "rack1", CIDR: "10.9.0.0/24", DynamicStart: "10.9.0.100", DynamicEnd: "10.9.0.120"})
	if err != nil {
		f.Fatal(err)
	}
	e.want(http.StatusCreated, "POST", "/api/v1/admin/boot-subnets/"+sn.ID+"/reservations", fx.admin.token, map[string]any{"mac": "52:54:00:f1:00:01", "ip": "10.9.0.20"})
	e.want(http.StatusCreated, "POST", "/api/v1/admin/machines", fx.admin.token, ipmiMachine("fuzz-1", "52:54:00:f1:00:02"))
	if err := e.st.RecordDiscovered(ctx, "52:54:00:f1:00:03", "", "PXEClient:Arch:00007", 7, ""); err != nil {
		f.Fatal(err)
	}
	return fx
}

// path returns route r's path for caller c: each parameter is the first
// object the list at the path before it shows c, or an id of nothing when
// the list shows none.
func (fx *apiFuzz) path(c *fuzzCaller, r fuzzRoute) string {
	key := c.name + " " + r.path
	if p, ok := fx.paths[key]; ok {
		return p
	}
	segs := strings.Split(r.path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = fx.firstID(c, strings.Join(segs[:i], "/"), strings.Trim(s, ":?"))
		}
	}
	p := strings.Join(segs, "/")
	fx.paths[key] = p
	return p
}

func (fx *apiFuzz) firstID(c *fuzzCaller, list, param string) string {
	if code, body := fx.e.api("GET", list, c.token, nil); code == http.StatusOK && len(items(body)) > 0 {
		it := obj(items(body)[0])
		for _, k := range []string{param, "id", "mac", "name"} {
			if v, ok := it[k].(string); ok && v != "" {
				return url.PathEscape(v)
			}
		}
	}
	return fuzzFakeIDs[0]
}

// keepUsable undoes what earlier iterations did to the callers themselves:
// an ended session is replaced and a suspended tenant is reinstated, so
// later inputs still reach the handlers.
func (fx *apiFuzz) keepUsable(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []*fuzzCaller{fx.admin, fx.owner} {
		if code, _ := fx.e.api("GET", "/api/v1/account", c.token, nil); code != http.StatusUnauthorized {
			continue
		}
		u, err := fx.e.st.GetUser(ctx, c.userID)
		if err != nil {
			t.Fatal(err)
		}
		if c.token, _, err = fx.e.srv.issueSession(ctx, u, store.SessionAPI, "192.0.2.1", "fuzz"); err != nil {
			t.Fatal(err)
		}
	}
	tn, err := fx.e.st.GetTenant(ctx, fx.owner.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status == store.TenantSuspended {
		if err := fx.e.st.UnsuspendTenant(ctx, store.Actor{Email: "test"}, tn.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzSample builds a value that fits an OpenAPI schema: its example when
// it has one, else every property filled in by type.
func fuzzSample(doc, s map[string]any, depth int) any {
	s = resolve(doc, s)
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 {
		out := map[string]any{}
		for _, part := range all {
			if m, ok := fuzzSample(doc, obj(part), depth+1).(map[string]any); ok {
				for k, v := range m {
					out[k] = v
				}
			}
		}
		return out
	}
	if ex, ok := s["example"]; ok {
		return ex
	}
	if en, ok := s["enum"].([]any); ok && len(en) > 0 {
		return en[0]
	}
	if depth > 4 {
		return nil
	}
	switch s["type"] {
	case "object":
		out := map[string]any{}
		for k, p := range obj(s["properties"]) {
			out[k] = fuzzSample(doc, obj(p), depth+1)
		}
		return out
	case "array":
		return []any{fuzzSample(doc, obj(s["items"]), depth+1)}
	case "integer", "number":
		return 1
	case "boolean":
		return true
	case "string":
		if s["format"] == "date-time" {
			return "2030-01-01T00:00:00Z"
		}
		return "fuzz"
	}
	return nil
}

// FuzzAPIBodies sends any body, with any content type, to every API route
// that takes one, as a staff admin or a customer owner, with the route's
// path parameters naming real objects or nothing. No answer may be a 5xx
// (which is also how a recovered panic shows), every answer must be JSON
// (or empty on success), and every refusal must carry the API error shape.
func FuzzAPIBodies(f *testing.F) {
	fx := newAPIFuzz(f)
	doc := fx.e.want(http.StatusOK, "GET", "/api/v1/openapi.json", "", nil)
	for i, r := range fx.routes {
		op := obj(obj(obj(doc["paths"])[strings.NewReplacer(":id", "{id}", ":mac", "{mac}", ":snapshotID", "{snapshotID}").Replace(strings.TrimPrefix(r.path, apiPrefix))])[strings.ToLower(r.method)])
		schema := obj(obj(obj(obj(op["requestBody"])["content"])["application/json"])["schema"])
		if schema != nil {
			b, err := json.Marshal(fuzzSample(doc, schema, 0))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint16(i), uint8(0), false, uint8(0), b)
			f.Add(uint16(i), uint8(0), true, uint8(0), b)
		}
		f.Add(uint16(i), uint8(0), false, uint8(0), []byte("{}"))
	}
	for ct := range fuzzContentTypes {
		f.Add(uint16(0), uint8(ct), false, uint8(1), []byte(`{"name":"x"}`))
	}
	for _, b := range []string{"", "null", "[]", `{"a":`, "\xff\xfe", `{"name":"a"}{"name":"b"}`, `{"name":1e400}`, `{"name":"\ud800"}`} {
		f.Add(uint16(1), uint8(0), true, uint8(2), []byte(b))
	}

	f.Fuzz(func(t *testing.T, route uint16, contentType uint8, asOwner bool, idChoice uint8, body []byte) {
		fx.e.t = t
		if len(body) > fuzzMaxBody {
			body = body[:fuzzMaxBody]
		}
		r := fx.routes[int(route)%len(fx.routes)]
		c := fx.admin
		if asOwner {
			c = fx.owner
		}
		path := fx.path(c, r)
		if k := int(idChoice) % (len(fuzzFakeIDs) + 1); k > 0 {
			segs := strings.Split(r.path, "/")
			for i, s := range segs {
				if strings.HasPrefix(s, ":") {
					segs[i] = fuzzFakeIDs[k-1]
				}
			}
			path = strings.Join(segs, "/")
		}
		ct := fuzzContentTypes[int(contentType)%len(fuzzContentTypes)]
		res, answer := fx.c.send(t, r.method, path, c.token, ct, body)
		checkAPIAnswer(t, r.method+" "+path+" as "+c.name, res, answer)
		switch {
		case res.StatusCode == http.StatusNotFound && idChoice%3 == 0:
			// The object the path named may be gone: look again next time.
			delete(fx.paths, c.name+" "+r.path)
		case res.StatusCode < 300 || res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
			fx.keepUsable(t)
		}
	})
}

// agentMachine is a machine kept in one reporting state with a fresh agent
// token for FuzzAgentReport.
type agentMachine struct {
	id, mac string
	mode    string // agent mode, e.g. inventory.ModeCommission
	state   string // the machine state of that mode
	token   string
	// hash is the machine's stored token hash while token is current.
	hash string
}

// placeholder is how fuzz inputs refer to the machine's current token.
func (m *agentMachine) placeholder() string { return "@" + m.mode + "-token@" }

// agentFuzz is the state FuzzAgentReport keeps between iterations.
type agentFuzz struct {
	e        *env
	c        *fuzzClient
	machines []*agentMachine
}

func (a *agentFuzz) act(t testing.TB, id, action string, in store.MachineActionInput) {
	t.Helper()
	if in.Reason == "" {
		in.Reason = "fuzz"
	}
	if _, err := a.e.st.MachineAction(context.Background(), store.Actor{Email: "test"}, id, action, in); err != nil {
		t.Fatalf("%s %s: %v", action, id, err)
	}
}

// arm brings m back to the state its mode reports from, whatever an
// earlier report did to it, and gives it a fresh token.
func (a *agentFuzz) arm(t testing.TB, m *agentMachine) {
	t.Helper()
	ctx := context.Background()
	state := func() string {
		d, err := a.e.st.GetMachine(ctx, m.id)
		if err != nil {
			t.Fatal(err)
		}
		return d.State
	}
	toReady := func() {
		switch state() {
		case store.MachineReady:
			return
		case store.MachineBroken:
		default:
			a.act(t, m.id, store.MachineMarkBroken, store.MachineActionInput{})
		}
		a.act(t, m.id, store.MachineMarkFixed, store.MachineActionInput{})
	}
	deploy := store.MachineActionInput{ImageID: "fuzz-metal", Disk: "sda"}
	switch m.state {
	case store.MachineCommissioning:
		if s := state(); s != store.MachineCommissioning {
			if !slices.Contains(store.MachineTransitions()[store.MachineCommission].From, s) {
				a.act(t, m.id, store.MachineMarkBroken, store.MachineActionInput{})
			}
			a.act(t, m.id, store.MachineCommission, store.MachineActionInput{})
		}
	case store.MachineDeploying:
		if state() != store.MachineDeploying {
			toReady()
			a.act(t, m.id, store.MachineDeploy, deploy)
		}
	case store.MachineReleasing:
		switch state() {
		case store.MachineReleasing:
		case store.MachineDeployed, store.MachineFailedDeployment:
			a.act(t, m.id, store.MachineRelease, store.MachineActionInput{})
		default:
			toReady()
			a.act(t, m.id, store.MachineDeploy, deploy)
			tok, err := a.e.st.IssueAgentToken(ctx, m.id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.e.st.AgentReportResult(ctx, tok, store.AgentResult{Mode: inventory.ModeDeploy, Message: "fuzz"}); err != nil {
				t.Fatal(err)
			}
			a.act(t, m.id, store.MachineRelease, store.MachineActionInput{})
		}
	}
	if s := state(); s != m.state {
		t.Fatalf("machine %s is %s, want %s", m.id, s, m.state)
	}
	tok, err := a.e.st.IssueAgentToken(ctx, m.id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.e.st.GetMachine(ctx, m.id)
	if err != nil {
		t.Fatal(err)
	}
	m.token, m.hash = tok, d.AgentTokenHash
}

// newAgentFuzz builds a portal with three machines, commissioning,
// deploying and releasing, each holding a real agent token.
func newAgentFuzz(f *testing.F) *agentFuzz {
	e := newEnv(f)
	ctx := context.Background()
	admin := e.staff(store.RoleAdmin)
	if _, err := e.st.CreateImage(ctx, store.Actor{Email: "test"}, store.ImageInput{Name: "fuzz-metal", OS: "Debian", Version: "12", Kind: store.ImageMachine,
		SourceURL: "http://10.9.0.1:8082/boot/images/fuzz-metal.img.gz", Checksum: strings.Repeat("ab", 32), Enabled: true}); err != nil {
		f.Fatal(err)
	}
	a := &agentFuzz{e: e, c: newFuzzClient(f, e)}
	for i, mode := range []string{inventory.ModeCommission, inventory.ModeDeploy, inventory.ModeRelease} {
		mac := "52:54:00:f2:00:0" + strconv.Itoa(i+1)
		res := e.want(http.StatusCreated, "POST", "/api/v1/admin/machines", admin, ipmiMachine("fuzz-"+mode, mac))
		m := &agentMachine{id: res["id"].(string), mac: mac, mode: mode,
			state: map[string]string{inventory.ModeCommission: store.MachineCommissioning, inventory.ModeDeploy: store.MachineDeploying, inventory.ModeRelease: store.MachineReleasing}[mode]}
		// Every machine is commissioned once, so that it has an inventory
		// and mark_fixed brings it back to ready.
		a.act(f, m.id, store.MachineCommission, store.MachineActionInput{})
		tok, err := e.st.IssueAgentToken(ctx, m.id)
		if err != nil {
			f.Fatal(err)
		}
		if code, res := e.api("POST", inventory.ReportPath, "", agentReport(tok, mac)); code != http.StatusNoContent {
			f.Fatalf("commission %s: %d %v", mode, code, res)
		}
		a.arm(f, m)
		a.machines = append(a.machines, m)
	}
	return a
}

// agentSeeds are reports built from the inventory types, with the status
// each must get: a placeholder token stands for the machine's real one.
func agentSeeds(a *agentFuzz) map[string]int {
	com, dep, rel := a.machines[0], a.machines[1], a.machines[2]
	inv := &inventory.Inventory{
		CPU:       inventory.CPU{Model: "AMD EPYC 7302P", Cores: 16, Threads: 32},
		MemoryMiB: 131072,
		Disks:     []inventory.Disk{{Name: "sda", SizeBytes: 960197124096, Model: "SAMSUNG MZ7LH960", Serial: "S45NNA0M123456"}},
		NICs:      []inventory.NIC{{Name: "eno1", MAC: com.mac, Link: true, SpeedMbps: 10000}},
		BMC:       inventory.BMC{Present: true, Note: "/dev/ipmi0"},
	}
	sum := strings.Repeat("0123456789abcdef", 4)
	// A fixed host key keeps the seeds the same from run to run.
	hostPub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)).Public())
	if err != nil {
		a.e.t.Fatal(err)
	}
	hostKey := strings.Fields(string(ssh.MarshalAuthorizedKey(hostPub)))
	deployed := &inventory.DeployResult{Disk: "sda", BytesWritten: 400 << 20, SHA256: sum, SeedPartition: "sda1", SSHHostKey: hostKey[0] + " " + hostKey[1]}
	logLines := []string{`level=INFO msg="image written" disk=/dev/sda`, "level=INFO\tmsg=done"}
	report := func(m *agentMachine, status string, edit func(r *inventory.Report)) string {
		r := inventory.Report{Token: m.placeholder(), MAC: m.mac, Mode: m.mode, Status: status, Log: logLines}
		if edit != nil {
			edit(&r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			a.e.t.Fatal(err)
		}
		return string(b)
	}
	withSHA := func(s string) func(r *inventory.Report) {
		return func(r *inventory.Report) { d := *deployed; d.SHA256 = s; r.Deploy = &d }
	}
	seeds := map[string]int{
		report(com, inventory.StatusOK, func(r *inventory.Report) { r.Inventory = inv }):                               http.StatusNoContent,
		report(com, inventory.StatusFailed, func(r *inventory.Report) { r.Message = "no disks found"; r.Log = nil }):   http.StatusNoContent,
		report(dep, inventory.StatusOK, func(r *inventory.Report) { r.Deploy = deployed }):                             http.StatusNoContent,
		report(dep, inventory.StatusOK, func(r *inventory.Report) { r.Deploy = &inventory.DeployResult{Disk: "sda"} }): http.StatusNoContent,
		report(dep, inventory.StatusFailed, func(r *inventory.Report) { r.Message = "sha256 mismatch" }):               http.StatusNoContent,
		report(rel, inventory.StatusOK, func(r *inventory.Report) { r.Wiped = []string{"sda", "nvme0n1"} }):            http.StatusNoContent,
		report(rel, inventory.StatusFailed, nil):                                                                       http.StatusNoContent,

		// Refused: a token of nothing, of another mode or machine, a
		// report that breaks the format, a body that is not one.
		report(com, inventory.StatusOK, func(r *inventory.Report) { r.Inventory, r.Token = inv, "forged-token" }):        http.StatusNotFound,
		report(com, inventory.StatusOK, func(r *inventory.Report) { r.Mode, r.Deploy = inventory.ModeDeploy, deployed }): http.StatusNotFound,
		report(dep, inventory.StatusOK, func(r *inventory.Report) { r.Token = rel.placeholder() }):                       http.StatusNotFound,
		report(com, inventory.StatusOK, func(r *inventory.Report) { r.Inventory, r.MAC = inv, dep.mac }):                 http.StatusUnprocessableEntity,
		report(com, inventory.StatusOK, nil):                                                                                            http.StatusUnprocessableEntity,
		report(dep, inventory.StatusOK, withSHA("abc")):                                                                                 http.StatusUnprocessableEntity,
		report(dep, inventory.StatusOK, withSHA(strings.ToUpper(sum))):                                                                  http.StatusUnprocessableEntity,
		report(dep, inventory.StatusOK, withSHA(sum[:63]+"é")):                                                                          http.StatusUnprocessableEntity,
		report(dep, inventory.StatusOK, withSHA("ééééééééééééééééé")):                                                                   http.StatusUnprocessableEntity,
		report(dep, inventory.StatusOK, func(r *inventory.Report) { d := *deployed; d.SSHHostKey = "ssh-ed25519 AAAA"; r.Deploy = &d }): http.StatusUnprocessableEntity,
		report(dep, inventory.StatusOK, func(r *inventory.Report) { d := *deployed; d.SSHHostKey += "\nssh-rsa AAAA"; r.Deploy = &d }):  http.StatusUnprocessableEntity,
		report(rel, inventory.StatusOK, func(r *inventory.Report) { r.Log = []string{"a\x1b[2Jb"} }):                                    http.StatusUnprocessableEntity,
		`{"token":"` + com.placeholder() + `","mac":"` + com.mac + `","mode":"commission","status":"ok","inventory":{}}`:                http.StatusUnprocessableEntity,
		"null": http.StatusUnprocessableEntity,
		"":     http.StatusBadRequest,
		"{":    http.StatusBadRequest,
		`{"token":"` + com.placeholder() + `","extra":1}`: http.StatusBadRequest,
		`{"token":"` + com.placeholder() + `"}{}`:         http.StatusBadRequest,
		`{"deploy":{"bytes_written":"1"}}`:                http.StatusBadRequest,
	}
	return seeds
}

// FuzzAgentReport sends any body to the boot agent's report. Inputs name a
// machine's current one-time token by its placeholder. No answer may be a
// 5xx; it is 204, 400, 404 or 422 and refusals carry the API error shape;
// a 204 needs the real token of a machine in the report's mode, spends it
// (the same report again is a 404), and a refusal leaves the machine as it
// was. The seeds, reports built from the inventory types, get the status
// each is written for.
func FuzzAgentReport(f *testing.F) {
	a := newAgentFuzz(f)
	seeds := agentSeeds(a)
	for _, b := range slices.Sorted(func(yield func(string) bool) {
		for k := range seeds {
			if !yield(k) {
				return
			}
		}
	}) {
		f.Add([]byte(b))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		a.e.t = t
		if len(body) > fuzzMaxReport {
			body = body[:fuzzMaxReport]
		}
		sent := body
		var used []*agentMachine
		for _, m := range a.machines {
			if p := []byte(m.placeholder()); bytes.Contains(sent, p) {
				sent = bytes.ReplaceAll(sent, p, []byte(m.token))
				used = append(used, m)
			}
		}
		res, answer := a.c.send(t, "POST", inventory.ReportPath, "", "application/json", sent)
		checkAPIAnswer(t, "agent report", res, answer)
		if want, ok := seeds[string(body)]; ok && res.StatusCode != want {
			t.Fatalf("seed %s: status %d, want %d: %s", body, res.StatusCode, want, answer)
		}
		switch res.StatusCode {
		case http.StatusNoContent:
			var r inventory.Report
			if err := json.Unmarshal(sent, &r); err != nil {
				t.Fatalf("204 for a body encoding/json refuses (%v): %q", err, sent)
			}
			i := slices.IndexFunc(used, func(m *agentMachine) bool { return m.token == r.Token })
			if i < 0 {
				t.Fatalf("204 without a real token: %q", sent)
			}
			m := used[i]
			if r.Mode != m.mode {
				t.Fatalf("204 for mode %q with the token of a machine in %s: %q", r.Mode, m.state, sent)
			}
			again, answer := a.c.send(t, "POST", inventory.ReportPath, "", "application/json", sent)
			if again.StatusCode != http.StatusNotFound {
				t.Fatalf("the token was accepted twice: %d %s", again.StatusCode, answer)
			}
			a.arm(t, m)
		case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
			for _, m := range used {
				d, err := a.e.st.GetMachine(context.Background(), m.id)
				if err != nil {
					t.Fatal(err)
				}
				if d.State != m.state || d.AgentTokenHash != m.hash {
					t.Fatalf("a refused report (%d %s) changed machine %s: state %s", res.StatusCode, answer, m.mode, d.State)
				}
			}
		default:
			t.Fatalf("status %d: %s", res.StatusCode, answer)
		}
	})
}
