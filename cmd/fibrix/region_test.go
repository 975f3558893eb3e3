package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/hypervisor"
	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
)

// The region under test: two portal-only and two provisioner-only
// processes of the real binary on one PostgreSQL database, and VM hosts on
// libvirt's test driver, each small enough that capacity runs out.
const (
	regionHostCount  = 10
	regionTenants    = 20
	regionOrdersEach = 5 // first round, per tenant; one more than the quota allows
	regionQuota      = 4 // instances per tenant
	// Per host: 16 threads at 1.0× CPU less 10 reserved leave 6 vCPUs;
	// 3 GiB at 1.5× memory less 1 GiB reserved leave 3.5 GiB; the 100 GiB
	// pool takes ten 10 GiB disks. A nano VM (1 vCPU, 512 MiB, 10 GiB) thus
	// fits six times, CPU-bound; a small one (1 vCPU, 2 GiB) once with room
	// for three nanos.
	regionNanoPerHost = 6
	// regionExitLimit bounds a graceful stop: the portal drains for at most
	// 10 s (portal.Serve) and the engine records interrupted work within
	// its 10 s finish timeout, side by side.
	regionExitLimit = 15 * time.Second
	// regionSettle bounds waiting for the region to reach what was asked;
	// it covers a dead worker's lease (engine.DefaultLease, one minute).
	regionSettle = 150 * time.Second
)

// TestRegion runs the region under faults: concurrent orders over both
// portals, a provisioner killed with SIGKILL while creating and deleting,
// and a portal and a provisioner stopped with SIGTERM under load. After
// each, the database, the hosts' domains and the hosts' volumes must agree:
// every VM exactly once where the database says, quotas, capacity and
// addresses exact.
func TestRegion(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "the region test needs root (it starts libvirtd and PostgreSQL as the postgres user)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	libvirttest.Ensure(t)
	began := time.Now()
	r := newRegion(t)
	defer func() { t.Logf("region test took %s", time.Since(began).Round(time.Second)) }()

	t.Run("ConcurrentOrders", r.concurrentOrders)
	if t.Failed() {
		return
	}
	t.Run("ProvisionerKilled", r.provisionerKilled)
	if t.Failed() {
		return
	}
	t.Run("GracefulStop", r.gracefulStop)
}

type region struct {
	t       *testing.T
	bin     string
	dsn     string
	db      *pgx.Conn
	hosts   []*regionHost
	hostIDs map[string]int // host id → index in hosts
	portals []*regionProc
	provs   []*regionProc
	tenants []*regionTenant
	staff   api
	imageID string

	mu      sync.Mutex
	live    map[string]bool // VMs that should exist and run
	deleted map[string]bool // VMs whose deletion was accepted
	// killed are the lease owner prefixes of provisioners that died.
	killed []string
}

type regionTenant struct {
	i      int
	name   string
	token  string
	key    string
	client *http.Client
}

func newRegion(t *testing.T) *region {
	dsn := pgtest.DSN(t)
	r := &region{t: t, bin: buildBinary(t), dsn: dsn, hostIDs: map[string]int{}, live: map[string]bool{}, deleted: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if r.db, err = pgx.Connect(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close(context.Background()) })

	// Schema and the first staff account once, before any server starts.
	work := t.TempDir()
	for _, args := range [][]string{
		{"migrate"},
		{"admin", "create-staff", "--email", "ops@region.example", "--password", "region staff password", "--role", "admin"},
	} {
		out, err := exec.Command(r.bin, append(args, "--database-url", dsn, "--data-dir", filepath.Join(work, "admin"))...).CombinedOutput()
		if err != nil {
			t.Fatalf("fibrix %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// Short socket paths: sun_path holds about 100 bytes.
	sockDir, err := os.MkdirTemp("", "fbxregion")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	for i := range regionHostCount {
		r.hosts = append(r.hosts, startRegionHost(t, sockDir, fmt.Sprintf("kvm-%d", i)))
	}

	// All four at once, as a region's replicas come up.
	var wg sync.WaitGroup
	procs := make([]*regionProc, 4)
	for i := range procs {
		role := []string{"portal", "portal", "provisioner", "provisioner"}[i]
		name := fmt.Sprintf("%s-%d", role, i%2)
		wg.Go(func() { procs[i] = r.start(name, role, filepath.Join(work, name)) })
	}
	wg.Wait()
	for _, p := range procs {
		if p == nil {
			t.FailNow()
		}
	}
	r.portals, r.provs = procs[:2], procs[2:]
	t.Cleanup(func() {
		for _, p := range slices.Concat(r.portals, r.provs) {
			p.stop(t)
		}
		if t.Failed() {
			for _, p := range slices.Concat(r.portals, r.provs) {
				p.dump(t)
			}
		}
	})

	r.staff = api{t: t, base: r.portals[0].url}
	var sess struct{ Token string }
	r.staff.must("POST", "/auth/login", map[string]string{"email": "ops@region.example", "password": "region staff password"}, &sess, 200)
	r.staff.token = sess.Token
	r.staff.must("PUT", "/admin/quota-defaults", map[string]int64{"instances": regionQuota, "vcpus": 8, "memory_mib": 16384,
		"disk_gib": 200, "ssh_keys": 10, "port_forwards": 5}, nil, 200)
	image := filepath.Join(work, "debian-12.qcow2")
	content := []byte("a small stand-in image: the test driver keeps no data\n")
	if err := os.WriteFile(image, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	var img struct{ ID string }
	r.staff.must("POST", "/admin/images", map[string]any{"name": "debian-12", "os": "Debian", "version": "12",
		"source_url": "file://" + image, "checksum": "sha256:" + hex.EncodeToString(sum[:])}, &img, 201)
	r.imageID = img.ID
	r.staff.must("POST", "/admin/subnets", map[string]any{"name": "region", "cidr": "10.213.90.0/24", "gateway": "10.213.90.1",
		"range_start": "10.213.90.10", "range_end": "10.213.90.250"}, nil, 201)
	ids := make([]string, len(r.hosts))
	for i, h := range r.hosts {
		var host struct{ ID string }
		r.staff.must("POST", "/admin/hosts", map[string]any{"name": fmt.Sprintf("kvm-%d", i), "uri": h.URI(),
			"storage_pool": "default-pool", "cpu_ratio": 1.0, "reserved_cores": 10,
			"memory_ratio": 1.5, "reserved_memory_mib": 1024}, &host, 201)
		ids[i] = host.ID
		r.hostIDs[host.ID] = i
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		var ready int
		if err := r.db.QueryRow(ctx, `SELECT count(*) FROM hosts WHERE state = 'ready'`).Scan(&ready); err != nil {
			t.Fatal(err)
		}
		if ready == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d hosts ready after 60 s", ready, len(ids))
		}
	}

	// The customers, each from an address of its own, as the portal's
	// per-address sign-up budget expects; half sign up on each portal.
	r.tenants = make([]*regionTenant, regionTenants)
	for i := range r.tenants {
		wg.Go(func() { r.tenants[i] = r.signUp(i) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return r
}

// regionProc is one running `fibrix serve`.
type regionProc struct {
	name, role, dataDir string
	log                 string // path of its combined output
	url                 string // the portal's, for portals
	cmd                 *exec.Cmd
	exited              chan struct{}
	waitErr             error
	exitAt              time.Time
}

var regionPortalURL = regexp.MustCompile(`msg="portal listening" url=(http://\S+)`)

// start runs `fibrix serve` in one role and waits until it serves. On a
// failure it reports and returns nil (it may run outside the test's
// goroutine).
func (r *region) start(name, role, dataDir string) *regionProc {
	t := r.t
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Error(err)
		return nil
	}
	p := &regionProc{name: name, role: role, dataDir: dataDir, exited: make(chan struct{})}
	f, err := os.CreateTemp(dataDir, "serve-*.log")
	if err != nil {
		t.Error(err)
		return nil
	}
	p.log = f.Name()
	p.cmd = exec.Command(r.bin, "serve", "--database-url", r.dsn, "--data-dir", dataDir, "--roles", role,
		"--listen", "127.0.0.1:0", "--metadata-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
		"--ssh-gateway-listen", "127.0.0.1:0", "--http-forward-listen", "127.0.0.1:0", "--tls-forward-listen", "127.0.0.1:0",
		"--forward-ports", "60100-60109", "--watch-interval", "3s", "--workers", "4")
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Error(err)
		return nil
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.exitAt = time.Now()
		f.Close()
		close(p.exited)
	}()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := os.ReadFile(p.log)
		if bytes.Contains(out, []byte(`msg="fibrix serving"`)) {
			if role == "portal" {
				m := regionPortalURL.FindSubmatch(out)
				if m == nil {
					t.Errorf("%s: no portal address in its log:\n%s", name, out)
					return nil
				}
				p.url = string(m[1])
			}
			return p
		}
		select {
		case <-p.exited:
			t.Errorf("%s exited before serving (%v):\n%s", name, p.waitErr, out)
			return nil
		default:
		}
		if time.Now().After(deadline) {
			t.Errorf("%s not serving within 60 s:\n%s", name, out)
			return nil
		}
	}
}

// leaseOwner is the prefix of the lease owner names this process's engine
// uses (engineOwner: hostname-pid-random).
func (p *regionProc) leaseOwner() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-", h, p.cmd.Process.Pid)
}

func (p *regionProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *regionProc) stop(t *testing.T) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(regionExitLimit):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("%s did not stop within %s of SIGTERM", p.name, regionExitLimit)
	}
}

func (p *regionProc) dump(t *testing.T) {
	out, _ := os.ReadFile(p.log)
	t.Logf("--- %s (%s) log, last lines:\n%s", p.name, p.log, lastLines(string(out), 40))
}

// regionClient is an HTTP client whose connections come from addr, one
// connection per request, so that a request's connection is its own.
func regionClient(addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// regionResult is the outcome of one API request.
type regionResult struct {
	status int
	code   string // the API's error code
	body   []byte
	err    error
	// wrote is when the request was fully sent; zero if it never was.
	wrote time.Time
	done  time.Time
}

func regionCall(c *http.Client, base, token, method, path string, body any) regionResult {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	var res regionResult
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		mu.Lock()
		res.wrote = time.Now()
		mu.Unlock()
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, base+"/api/v1"+path, rd)
	if err != nil {
		res.err = err
		return res
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err == nil {
		res.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		res.status = resp.StatusCode
	}
	mu.Lock()
	defer mu.Unlock()
	res.err, res.done = err, time.Now()
	if res.status >= 400 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(res.body, &e)
		res.code = e.Error.Code
	}
	return res
}

func (r *region) signUp(i int) *regionTenant {
	t := r.t
	tn := &regionTenant{i: i, name: fmt.Sprintf("Region Shop %02d", i), client: regionClient(fmt.Sprintf("127.0.1.%d", i+1))}
	base := r.portals[i%2].url
	res := regionCall(tn.client, base, "", "POST", "/auth/signup", map[string]string{"tenant": tn.name,
		"email": fmt.Sprintf("owner%02d@shop%02d.example", i, i), "password": "correct horse battery staple"})
	var sess struct{ Token string }
	if res.err != nil || res.status != 201 || json.Unmarshal(res.body, &sess) != nil {
		t.Errorf("sign up %s: %d %v %s", tn.name, res.status, res.err, res.body)
		return nil
	}
	tn.token = sess.Token
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Error(err)
		return nil
	}
	sp, _ := ssh.NewPublicKey(pub)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " owner@shop"
	res = regionCall(tn.client, r.portals[(i+1)%2].url, tn.token, "POST", "/ssh-keys", map[string]string{"name": "laptop", "public_key": key})
	var k struct{ ID string }
	if res.err != nil || res.status != 201 || json.Unmarshal(res.body, &k) != nil {
		t.Errorf("ssh key of %s: %d %v %s", tn.name, res.status, res.err, res.body)
		return nil
	}
	tn.key = k.ID
	return tn
}

// order places one order through portal p and records an accepted VM as
// live. It returns the VM's id ("" when refused) and the result.
func (r *region) order(tn *regionTenant, p *regionProc, name, plan string) (string, regionResult) {
	res := regionCall(tn.client, p.url, tn.token, "POST", "/vms", map[string]any{"name": name, "plan": plan,
		"image": "debian-12", "ssh_keys": []string{tn.key}})
	if res.err != nil || res.status != 201 {
		return "", res
	}
	var vm struct{ ID string }
	if err := json.Unmarshal(res.body, &vm); err != nil || vm.ID == "" {
		res.err = fmt.Errorf("201 without a VM id: %s", res.body)
		return "", res
	}
	r.mu.Lock()
	r.live[vm.ID] = true
	r.mu.Unlock()
	return vm.ID, res
}

// remove asks portal p to delete a VM and records it as to be gone.
func (r *region) remove(tn *regionTenant, p *regionProc, vmID string) regionResult {
	res := regionCall(tn.client, p.url, tn.token, "DELETE", "/vms/"+vmID, nil)
	if res.err == nil && res.status == 202 {
		r.mu.Lock()
		delete(r.live, vmID)
		r.deleted[vmID] = true
		r.mu.Unlock()
	}
	return res
}

// regionTally counts outcomes by status and code.
type regionTally struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *regionTally) add(res regionResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	k := fmt.Sprint(res.status)
	if res.err != nil {
		k = "transport error"
	} else if res.code != "" {
		k += " " + res.code
	}
	c.n[k]++
}

func (c *regionTally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	for k := range c.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, c.n[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// checkOrder fails the test on an answer an order must never get: a
// transport error, a server error, or a refusal without a clear reason.
func checkOrder(t *testing.T, what string, res regionResult) {
	switch {
	case res.err != nil:
		t.Errorf("%s: %v", what, res.err)
	case res.status == 201:
	case res.status == 422 && (res.code == "quota_exceeded" || res.code == "no_capacity"):
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(res.body, &e) != nil || e.Error.Message == "" {
			t.Errorf("%s: refusal without a message: %s", what, res.body)
		}
	default:
		t.Errorf("%s: %d %s", what, res.status, res.body)
	}
}

func (r *region) concurrentOrders(t *testing.T) {
	var tally regionTally
	var wg sync.WaitGroup
	start := time.Now()
	for _, tn := range r.tenants {
		for j := range regionOrdersEach {
			wg.Go(func() {
				name := fmt.Sprintf("web-%d", j)
				_, res := r.order(tn, r.portals[(tn.i+j)%2], name, "nano")
				tally.add(res)
				checkOrder(t, tn.name+" orders "+name, res)
			})
		}
	}
	wg.Wait()
	ordered := time.Since(start)
	accepted := len(r.snapshot())
	t.Logf("%d orders over two portals in %s: %s", regionTenants*regionOrdersEach, ordered.Round(time.Millisecond), tally.String())

	// Every order that fit was taken: the refusals for capacity came only
	// once every host was full.
	slots := regionHostCount * regionNanoPerHost
	tally.mu.Lock()
	noCapacity := tally.n["422 no_capacity"]
	tally.mu.Unlock()
	if accepted > slots {
		t.Errorf("%d nano VMs accepted on %d hosts that hold %d", accepted, regionHostCount, slots)
	}
	if noCapacity > 0 && accepted != slots {
		t.Errorf("orders refused for capacity while only %d of %d slots were taken", accepted, slots)
	}
	if accepted == regionTenants*regionOrdersEach {
		t.Errorf("all %d orders accepted: neither quota (%d each) nor capacity (%d) held", accepted, regionQuota, slots)
	}
	r.settle(t)
	t.Logf("%d VMs accepted and running %s after the first order", accepted, time.Since(start).Round(time.Millisecond))
	r.check(t)
}

func (r *region) provisionerKilled(t *testing.T) {
	victim := r.provs[0]
	// Staff give the full hosts room for two more vCPUs each, so that new
	// orders are taken while the deletions are still under way.
	var hostIDs []string
	for id := range r.hostIDs {
		hostIDs = append(hostIDs, id)
	}
	for _, id := range hostIDs {
		r.staff.must("PATCH", "/admin/hosts/"+id, map[string]any{"reserved_cores": 8}, nil, 200)
	}
	live := r.snapshot()
	var orders, deletes regionTally
	var wg sync.WaitGroup
	start := time.Now()
	// Delete one running VM of every tenant that has one; order a new one
	// for each; and delete some of the new ones while they are being built.
	byTenant := r.vmsByTenant(t, live)
	var inFlightDeletes int
	var idMu sync.Mutex
	for _, tn := range r.tenants {
		if ids := byTenant[tn.i]; len(ids) > 0 {
			wg.Go(func() {
				res := r.remove(tn, r.portals[tn.i%2], ids[0])
				deletes.add(res)
				if res.err != nil || res.status != 202 {
					t.Errorf("%s deletes %s: %d %v %s", tn.name, ids[0], res.status, res.err, res.body)
				}
			})
		}
		wg.Go(func() {
			plan := []string{"nano", "small"}[tn.i%2]
			id, res := r.order(tn, r.portals[(tn.i+1)%2], "db-0", plan)
			orders.add(res)
			checkOrder(t, tn.name+" orders db-0", res)
			if id == "" || tn.i%4 != 0 {
				return
			}
			idMu.Lock()
			inFlightDeletes++
			idMu.Unlock()
			res = r.remove(tn, r.portals[tn.i%2], id)
			deletes.add(res)
			if res.err != nil || res.status != 202 {
				t.Errorf("%s deletes the new %s: %d %v %s", tn.name, id, res.status, res.err, res.body)
			}
		})
	}
	// Kill it while it holds VMs and creations and deletions are under way,
	// best while it holds one of those.
	var held, busy, unfinished int
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if err := r.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE lease_owner LIKE $1),
	count(*) FILTER (WHERE lease_owner LIKE $1 AND state IN ('pending', 'provisioning', 'deleting')),
	count(*) FILTER (WHERE state IN ('pending', 'provisioning', 'deleting'))
FROM vms WHERE deleted_at IS NULL`, victim.leaseOwner()+"%").Scan(&held, &busy, &unfinished); err != nil {
			t.Fatal(err)
		}
		if busy > 0 || held > 0 && unfinished > 0 && time.Since(start) > time.Second {
			break
		}
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	r.killed = append(r.killed, victim.leaseOwner())
	wg.Wait()
	t.Logf("killed %s (SIGKILL) holding %d VMs, %d of them being created or deleted, with %d creations and deletions unfinished, %s after the first request; orders: %s; deletes: %s (%d of new VMs)",
		victim.name, held, busy, unfinished, time.Since(start).Round(time.Millisecond), orders.String(), deletes.String(), inFlightDeletes)

	// The machine comes back with its data directory.
	time.Sleep(time.Second)
	p := r.start(victim.name, victim.role, victim.dataDir)
	if p == nil {
		t.FailNow()
	}
	r.provs[0] = p
	r.settle(t)
	t.Logf("region settled %s after the kill", time.Since(start).Round(time.Second))
	r.check(t)
}

func (r *region) gracefulStop(t *testing.T) {
	portal, prov := r.portals[1], r.provs[1]
	ctx := context.Background()

	// Load on the portal being stopped: sign-ins (a bcrypt check each, so
	// they take a while) and listings from every tenant's own address.
	stopLoad := make(chan struct{})
	var loadMu sync.Mutex
	var load []regionResult
	var wg sync.WaitGroup
	for _, tn := range r.tenants {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				var res regionResult
				if n%2 == 0 {
					res = regionCall(tn.client, portal.url, "", "POST", "/auth/login", map[string]string{
						"email": fmt.Sprintf("owner%02d@shop%02d.example", tn.i, tn.i), "password": "correct horse battery staple"})
				} else {
					res = regionCall(tn.client, portal.url, tn.token, "GET", "/vms", nil)
				}
				loadMu.Lock()
				load = append(load, res)
				loadMu.Unlock()
				if res.err != nil {
					time.Sleep(50 * time.Millisecond) // refused: the portal is going away
				}
			}
		})
	}
	// Work for the provisioner being stopped: new VMs and deletions.
	var orders regionTally
	byTenant := r.vmsByTenant(t, r.snapshot())
	var owg sync.WaitGroup
	for _, tn := range r.tenants[:10] {
		owg.Go(func() {
			_, res := r.order(tn, r.portals[0], "cache-0", "nano")
			orders.add(res)
			checkOrder(t, tn.name+" orders cache-0", res)
		})
		if ids := byTenant[tn.i]; len(ids) > 1 {
			owg.Go(func() {
				if res := r.remove(tn, r.portals[0], ids[1]); res.err != nil || res.status != 202 {
					t.Errorf("%s deletes %s: %d %v %s", tn.name, ids[1], res.status, res.err, res.body)
				}
			})
		}
	}
	owg.Wait()
	time.Sleep(700 * time.Millisecond) // sign-ins under way, provisioning under way
	var held int
	_ = r.db.QueryRow(ctx, `SELECT count(*) FROM vms WHERE lease_owner LIKE $1`, prov.leaseOwner()+"%").Scan(&held)
	signalled := time.Now()
	for _, p := range []*regionProc{portal, prov} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*regionProc{portal, prov} {
		select {
		case <-p.exited:
		case <-time.After(regionExitLimit + 5*time.Second):
			t.Errorf("%s still running %s after SIGTERM", p.name, time.Since(signalled).Round(time.Second))
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		took := p.exitAt.Sub(signalled)
		t.Logf("%s exited %s after SIGTERM: %v", p.name, took.Round(time.Millisecond), p.waitErr)
		if p.waitErr != nil {
			t.Errorf("%s: exit after SIGTERM: %v, want status 0", p.name, p.waitErr)
		}
		if took > regionExitLimit {
			t.Errorf("%s took %s to exit, more than %s", p.name, took.Round(time.Millisecond), regionExitLimit)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stopLoad)
	wg.Wait()

	// Requests sent before the signal were answered, and properly.
	// A request sent in the last moments before the signal may still wait
	// in the kernel's accept queue when the listener closes; the client
	// cannot tell that from a refused connection, so it counts as racing
	// the signal, not as in flight.
	const margin = 100 * time.Millisecond
	var before, overlapping, after, refused int
	for _, res := range load {
		if !res.wrote.IsZero() && res.wrote.Before(signalled.Add(-margin)) {
			before++
			if res.done.After(signalled) {
				overlapping++
			}
			if res.err != nil || res.status >= 500 {
				t.Errorf("request sent %s before SIGTERM: %d %v %s", signalled.Sub(res.wrote).Round(time.Millisecond), res.status, res.err, res.body)
			}
			continue
		}
		after++
		if res.err != nil {
			refused++
		} else if res.status >= 500 {
			t.Errorf("request during shutdown answered %d %s", res.status, res.body)
		}
	}
	t.Logf("portal load: %d requests sent before SIGTERM (%d still in flight at the signal), %d after (%d refused); provisioner held %d VMs; orders: %s",
		before, overlapping, after, refused, held, orders.String())
	if overlapping == 0 {
		t.Error("no request was in flight when the portal was signalled: the load missed the shutdown")
	}

	// The stopped provisioner released everything it held.
	var leased []string
	rows, err := r.db.Query(ctx, `SELECT id FROM vms WHERE lease_owner LIKE $1`, prov.leaseOwner()+"%")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		leased = append(leased, id)
	}
	rows.Close()
	if len(leased) > 0 {
		t.Errorf("VMs still leased to %s after it stopped: %v", prov.name, leased)
	}
	r.settle(t)
	r.check(t)
}

// snapshot returns the VMs that should exist now.
func (r *region) snapshot() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.live)
}

// vmsByTenant lists the VMs of ids by tenant index, in id order.
func (r *region) vmsByTenant(t *testing.T, ids map[string]bool) map[int][]string {
	rows, err := r.db.Query(context.Background(), `SELECT v.id, t.name FROM vms v JOIN tenants t ON t.id = v.tenant_id WHERE v.deleted_at IS NULL ORDER BY v.id`)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, tn := range r.tenants {
		names[tn.name] = tn.i
	}
	out := map[int][]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		if ids[id] {
			out[names[name]] = append(out[names[name]], id)
		}
	}
	rows.Close()
	return out
}

// settle waits until every VM that should run runs and every deleted one is
// gone, failing at once on a VM in state error.
func (r *region) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	live := r.snapshot()
	deadline := time.Now().Add(regionSettle)
	for {
		rows, err := r.db.Query(ctx, `SELECT id, state, last_error, deleted_at IS NOT NULL FROM vms`)
		if err != nil {
			t.Fatal(err)
		}
		waiting := map[string]string{}
		for rows.Next() {
			var id, state, lastErr string
			var gone bool
			if err := rows.Scan(&id, &state, &lastErr, &gone); err != nil {
				t.Fatal(err)
			}
			switch {
			case state == "error":
				rows.Close()
				t.Fatalf("VM %s went to state error: %s", id, lastErr)
			case live[id] && state != "running":
				waiting[id] = state
			case !live[id] && !gone:
				waiting[id] = state + " (deleted)"
			}
		}
		rows.Close()
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %s: %d VMs still %v", regionSettle, len(waiting), waiting)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type regionVM struct {
	id, tenant, state, ip, host string
	vcpus, mem, disk            int64
}

// check compares the database, the hosts' domains and the hosts' volumes
// with what the customers were told, and checks quotas, capacity and
// addresses.
func (r *region) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	live := r.snapshot()
	r.mu.Lock()
	deleted := maps.Clone(r.deleted)
	r.mu.Unlock()

	vms := map[string]regionVM{}
	rows, err := r.db.Query(ctx, `SELECT id, tenant_id, state, ip, COALESCE(host_id, ''), vcpus, memory_mib, disk_gib
FROM vms WHERE deleted_at IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v regionVM
		if err := rows.Scan(&v.id, &v.tenant, &v.state, &v.ip, &v.host, &v.vcpus, &v.mem, &v.disk); err != nil {
			t.Fatal(err)
		}
		vms[v.id] = v
	}
	rows.Close()

	// The database holds exactly the VMs customers were told exist.
	for id := range live {
		if _, ok := vms[id]; !ok {
			t.Errorf("accepted VM %s is missing from the database", id)
		}
	}
	for id, v := range vms {
		if !live[id] {
			t.Errorf("VM %s (%s) is in the database but was never accepted, or was deleted", id, v.state)
		}
		if v.state != "running" || v.ip == "" || v.host == "" {
			t.Errorf("VM %s: state %s, ip %q, host %q; want running with an address on a host", id, v.state, v.ip, v.host)
		}
	}
	for id := range deleted {
		var state string
		var erased bool
		if err := r.db.QueryRow(ctx, `SELECT state, deleted_at IS NOT NULL FROM vms WHERE id = $1`, id).Scan(&state, &erased); err != nil || state != "deleted" || !erased {
			t.Errorf("deleted VM %s: state %q, gone %v, %v", id, state, erased, err)
		}
	}

	// Addresses: one row per live VM, the one it shows, none twice, none
	// held for a VM that is gone.
	rows, err = r.db.Query(ctx, `SELECT a.address, a.vm_id, COALESCE(v.deleted_at IS NULL, false) FROM ip_addresses a LEFT JOIN vms v ON v.id = a.vm_id`)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]string{} // vm → address
	owner := map[string]string{}
	for rows.Next() {
		var addr, vm string
		var alive bool
		if err := rows.Scan(&addr, &vm, &alive); err != nil {
			t.Fatal(err)
		}
		if !alive {
			t.Errorf("address %s is still held for VM %s, which is gone", addr, vm)
		}
		if o, dup := owner[addr]; dup {
			t.Errorf("address %s is held twice: VMs %s and %s", addr, o, vm)
		}
		owner[addr] = vm
		held[vm] = addr
	}
	rows.Close()
	shown := map[string]string{}
	for id, v := range vms {
		if held[id] != v.ip {
			t.Errorf("VM %s shows address %q but holds %q", id, v.ip, held[id])
		}
		if o, dup := shown[v.ip]; dup && v.ip != "" {
			t.Errorf("VMs %s and %s both show address %s", o, id, v.ip)
		}
		shown[v.ip] = id
	}

	// Hosts: the ledger is the sum of the VMs placed there and within the
	// host's capacity under its overcommit ratios.
	type hostRow struct {
		name                            string
		cores, mem, disk                int64
		cpuRatio, memRatio, diskRatio   float64
		resCores, resMem, resDisk       int64
		allocCPU, allocMem, allocDisk   int64
		sumCPU, sumMem, sumDisk, placed int64
	}
	hosts := map[string]*hostRow{}
	rows, err = r.db.Query(ctx, `SELECT id, name, cores, memory_mib, disk_gib, cpu_ratio, memory_ratio, disk_ratio,
	reserved_cores, reserved_memory_mib, reserved_disk_gib, alloc_vcpus, alloc_memory_mib, alloc_disk_gib FROM hosts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		h := &hostRow{}
		if err := rows.Scan(&id, &h.name, &h.cores, &h.mem, &h.disk, &h.cpuRatio, &h.memRatio, &h.diskRatio,
			&h.resCores, &h.resMem, &h.resDisk, &h.allocCPU, &h.allocMem, &h.allocDisk); err != nil {
			t.Fatal(err)
		}
		hosts[id] = h
	}
	rows.Close()
	for id, v := range vms {
		h, ok := hosts[v.host]
		if !ok {
			t.Errorf("VM %s is placed on unknown host %q", id, v.host)
			continue
		}
		h.sumCPU += v.vcpus
		h.sumMem += v.mem
		h.sumDisk += v.disk
		h.placed++
	}
	var placed []string
	for _, h := range hosts {
		if h.allocCPU != h.sumCPU || h.allocMem != h.sumMem || h.allocDisk != h.sumDisk {
			t.Errorf("host %s ledger %d vCPU/%d MiB/%d GiB, but its VMs take %d/%d/%d", h.name,
				h.allocCPU, h.allocMem, h.allocDisk, h.sumCPU, h.sumMem, h.sumDisk)
		}
		if float64(h.sumCPU+h.resCores) > float64(h.cores)*h.cpuRatio+1e-9 ||
			float64(h.sumMem+h.resMem) > float64(h.mem)*h.memRatio+1e-9 ||
			float64(h.sumDisk+h.resDisk) > float64(h.disk)*h.diskRatio+1e-9 {
			t.Errorf("host %s over capacity: %d vCPU, %d MiB, %d GiB placed on %d×%.1f−%d, %d×%.1f−%d, %d×%.1f−%d", h.name,
				h.sumCPU, h.sumMem, h.sumDisk, h.cores, h.cpuRatio, h.resCores, h.mem, h.memRatio, h.resMem, h.disk, h.diskRatio, h.resDisk)
		}
		placed = append(placed, fmt.Sprintf("%s:%d", h.name, h.placed))
	}
	sort.Strings(placed)

	// Tenants within their quotas.
	rows, err = r.db.Query(ctx, `SELECT t.name, t.quota_instances, t.quota_vcpus, t.quota_memory_mib, t.quota_disk_gib,
	count(v.id), COALESCE(sum(v.vcpus), 0), COALESCE(sum(v.memory_mib), 0), COALESCE(sum(v.disk_gib), 0)
FROM tenants t LEFT JOIN vms v ON v.tenant_id = t.id AND v.deleted_at IS NULL GROUP BY t.id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var qi, qc, qm, qd, n, c, m, d int64
		if err := rows.Scan(&name, &qi, &qc, &qm, &qd, &n, &c, &m, &d); err != nil {
			t.Fatal(err)
		}
		if n > qi || c > qc || m > qm || d > qd {
			t.Errorf("tenant %s over quota: %d VMs, %d vCPU, %d MiB, %d GiB of %d, %d, %d, %d", name, n, c, m, d, qi, qc, qm, qd)
		}
	}
	rows.Close()

	// No lease of a dead provisioner survives.
	for _, prefix := range r.killed {
		var n int
		if err := r.db.QueryRow(ctx, `SELECT count(*) FROM vms WHERE lease_owner LIKE $1`, prefix+"%").Scan(&n); err != nil || n > 0 {
			t.Errorf("%d VMs still leased to the killed provisioner %s (%v)", n, prefix, err)
		}
	}

	// The hosts: each VM is one domain, running, on the host the database
	// names and on no other; its disk likewise; nothing else of ours.
	domainsOn := map[string][]int{}
	disksOn := map[string][]int{}
	var leftovers []string
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i, h := range r.hosts {
		c, err := hypervisor.Dial(cctx, hypervisor.Config{URI: h.URI()})
		if err != nil {
			t.Fatalf("host kvm-%d: %v", i, err)
		}
		names, err := c.Domains(cctx)
		if err != nil {
			c.Close()
			t.Fatalf("host kvm-%d: %v", i, err)
		}
		for _, n := range names {
			id, ok := strings.CutPrefix(n, "fibrix-")
			if !ok {
				continue
			}
			domainsOn[id] = append(domainsOn[id], i)
			if !live[id] {
				leftovers = append(leftovers, fmt.Sprintf("domain %s on kvm-%d", n, i))
				continue
			}
			if s, err := c.State(cctx, n); err != nil || s != hypervisor.Running {
				t.Errorf("VM %s: domain on kvm-%d is %v (%v), want running", id, i, s, err)
			}
		}
		c.Close()
		out, err := exec.CommandContext(cctx, "virsh", "-q", "-c", h.virshURI(), "vol-list", "default-pool").CombinedOutput()
		if err != nil {
			t.Fatalf("host kvm-%d: virsh vol-list: %v\n%s", i, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "fibrix-base-") {
				continue
			}
			id, ok := strings.CutSuffix(strings.TrimPrefix(f[0], "fibrix-"), ".qcow2")
			if !ok {
				continue
			}
			disksOn[id] = append(disksOn[id], i)
			if !live[id] {
				leftovers = append(leftovers, fmt.Sprintf("volume %s on kvm-%d", f[0], i))
			}
		}
		if err := h.failure(); err != nil {
			t.Errorf("host kvm-%d lost libvirtd: %v", i, err)
		}
	}
	for id, v := range vms {
		want := []int{r.hostIDs[v.host]}
		if !slices.Equal(domainsOn[id], want) {
			t.Errorf("VM %s on kvm-%d: domains on hosts %v, want exactly one there", id, want[0], domainsOn[id])
		}
		if !slices.Equal(disksOn[id], want) {
			t.Errorf("VM %s on kvm-%d: disks on hosts %v, want exactly one there", id, want[0], disksOn[id])
		}
	}
	if len(leftovers) > 0 {
		sort.Strings(leftovers)
		t.Errorf("left on the hosts for VMs that are gone: %v", leftovers)
	}
	t.Logf("checked %d live VMs (%d deleted) against the database and %d hosts: %s", len(vms), len(deleted), len(r.hosts), strings.Join(placed, " "))
}
