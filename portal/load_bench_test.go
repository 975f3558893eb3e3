package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// The shape of the load: a region of loadTenants tenants with loadVMs VMs
// each, and loadUsers owners of different tenants using the portal at once.
const (
	loadTenants  = 1000
	loadVMs      = 20
	loadUsers    = 200
	loadRequests = 20 // per user and iteration, closed loop

	// The open loop: each user sends one request a second on average, at
	// random (Poisson) moments, for openLoopTime.
	openLoopInterval = time.Second
	openLoopTime     = 15 * time.Second
)

// loadUser is one signed-in owner: a browser session and an API session.
type loadUser struct {
	tenant string
	cookie string // the session cookie's value
	bearer string
	addr   net.IP // the loopback address the user connects from
}

// loadEndpoint is one customer-facing request.
type loadEndpoint struct {
	name    string
	request func(base string, u loadUser) *http.Request
	check   func(b *testing.B, u loadUser, body []byte)
}

// BenchmarkLoad seeds a region (outside the timed part, once per database)
// and drives loadUsers concurrent owners, each over its own keep-alive
// connection from its own loopback address, against the portal on a real
// listener. It reports the latency percentiles and throughput per
// endpoint, twice:
//
//   - <endpoint>/closed-loop: every user sends its next request the moment
//     the last one is answered (no think time), so the portal is saturated
//     and latency is mostly queueing: this is the throughput figure.
//   - <endpoint>/open-loop-1rps: every user sends one request a second on
//     average at Poisson moments, whatever the answers (offered load
//     loadUsers req/s); latency runs from the moment a request was due, so a
//     slow answer delays and counts against the requests behind it. This is
//     the latency a user sees at that load, not a saturation figure.
//
// The load generator runs in the same process on the same cores; its
// goroutines carry the pprof label side=client, so that a -cpuprofile
// tells its share (go tool pprof -tagfocus side=client).
func BenchmarkLoad(b *testing.B) {
	for _, db := range []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "load.db") }},
		{"postgres", func(b *testing.B) string { return pgtest.DSN(b) }},
	} {
		b.Run(db.name, func(b *testing.B) {
			url := db.url(b)
			e := newEnvOn(b, url)
			start := time.Now()
			users := seedLoad(b, e, url)
			b.Logf("seeded %d tenants × %d VMs in %s", loadTenants, loadVMs, time.Since(start).Round(time.Millisecond))
			base := e.serveReal()
			// The listener is shut down only once every benchmark connection
			// is gone: fasthttp 1.51 can close a per-address connection twice
			// when shutdown races with clients hanging up.
			b.Cleanup(func() { waitIdle(b, e.srv) })
			for _, ep := range loadEndpoints(e.srv) {
				b.Run(ep.name+"/closed-loop", func(b *testing.B) { driveLoad(b, base, users, ep, closedLoop) })
				b.Run(ep.name+"/open-loop-1rps", func(b *testing.B) { driveLoad(b, base, users, ep, openLoop) })
			}
		})
	}
}

func waitIdle(b *testing.B, s *Server) {
	deadline := time.Now().Add(10 * time.Second)
	for s.App().Server().GetOpenConnectionsCount() > 0 {
		if time.Now().After(deadline) {
			b.Logf("%d connections still open", s.App().Server().GetOpenConnectionsCount())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loadEndpoints(s *Server) []loadEndpoint {
	return []loadEndpoint{
		{
			// The floor: the same listener, middleware and load generator
			// with a database ping for all the work, i.e. what the two
			// pages below could reach on these cores at best.
			name: "healthz",
			request: func(base string, u loadUser) *http.Request {
				req, _ := http.NewRequest("GET", base+"/healthz", nil)
				return req
			},
			check: func(b *testing.B, u loadUser, body []byte) {
				if !bytes.Contains(body, []byte(`"status":"ok"`)) {
					b.Errorf("healthz: %.200s", body)
				}
			},
		},
		{
			name: "dashboard",
			request: func(base string, u loadUser) *http.Request {
				req, _ := http.NewRequest("GET", base+"/dashboard", nil)
				req.AddCookie(&http.Cookie{Name: s.cookieName(sessionCookie), Value: u.cookie})
				req.AddCookie(&http.Cookie{Name: s.cookieName(csrfCookie), Value: "load-benchmark-browser-value-0123456789"})
				return req
			},
			check: func(b *testing.B, u loadUser, body []byte) {
				if !bytes.Contains(body, []byte("Dashboard")) {
					b.Errorf("tenant %s: the dashboard did not render", u.tenant)
				}
			},
		},
		{
			name: "vms",
			request: func(base string, u loadUser) *http.Request {
				req, _ := http.NewRequest("GET", base+"/api/v1/vms", nil)
				req.Header.Set("Authorization", "Bearer "+u.bearer)
				return req
			},
			check: func(b *testing.B, u loadUser, body []byte) {
				var list struct {
					Items []vmJSON `json:"items"`
				}
				if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != loadVMs {
					b.Errorf("tenant %s: %d VMs listed (%v), want %d", u.tenant, len(list.Items), err, loadVMs)
				}
			},
		},
	}
}

// closedLoop sends loadRequests requests one after another, each as soon
// as the last is answered; latency is each request's own.
func closedLoop(send func() (time.Duration, error)) ([]time.Duration, error) {
	var lat []time.Duration
	for range loadRequests {
		d, err := send()
		if err != nil {
			return lat, err
		}
		lat = append(lat, d)
	}
	return lat, nil
}

// openLoop sends requests at Poisson moments, one per openLoopInterval on
// average, for openLoopTime. A request is sent when due or, if the user's
// last request is still waiting, right after it; its latency runs from
// when it was due.
func openLoop(send func() (time.Duration, error)) ([]time.Duration, error) {
	var lat []time.Duration
	start := time.Now()
	due := start
	for {
		due = due.Add(time.Duration(rand.ExpFloat64() * float64(openLoopInterval)))
		if due.Sub(start) > openLoopTime {
			return lat, nil
		}
		time.Sleep(time.Until(due))
		late := max(time.Since(due), 0)
		d, err := send()
		if err != nil {
			return lat, err
		}
		lat = append(lat, late+d)
	}
}

// driveLoad runs b.N rounds in which every user sends requests as pattern
// says, all users at once, and reports p50, p99 and the answers per second.
func driveLoad(b *testing.B, base string, users []loadUser, ep loadEndpoint,
	pattern func(send func() (time.Duration, error)) ([]time.Duration, error)) {
	clients := make([]*http.Client, len(users))
	for i, u := range users {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: u.addr}}
		clients[i] = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			DialContext: d.DialContext, MaxIdleConnsPerHost: 1, DisableCompression: true,
		}}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	send := func(i int) (time.Duration, []byte, error) {
		t0 := time.Now()
		res, err := clients[i].Do(ep.request(base, users[i]))
		if err != nil {
			return 0, nil, err
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		d := time.Since(t0)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %.200s", res.StatusCode, body)
		}
		return d, body, err
	}
	client := pprof.Labels("side", "client")
	// Warm up: connect every user and check the answer once.
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			pprof.Do(context.Background(), client, func(context.Context) {
				_, body, err := send(i)
				if err != nil {
					b.Errorf("warm-up %s: %v", ep.name, err)
					return
				}
				ep.check(b, users[i], body)
			})
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	lat := make([][]time.Duration, len(users))
	b.ResetTimer()
	for range b.N {
		for i := range users {
			wg.Go(func() {
				pprof.Do(context.Background(), client, func(context.Context) {
					l, err := pattern(func() (time.Duration, error) {
						d, _, err := send(i)
						return d, err
					})
					lat[i] = append(lat[i], l...)
					if err != nil {
						b.Errorf("%s: %v", ep.name, err)
					}
				})
			})
		}
		wg.Wait()
	}
	elapsed := b.Elapsed()
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
}

// seedLoad fills the database in one transaction of bulk inserts: tenants
// with an owner and a member, SSH keys, VMs spread over hosts with their
// keys, a port forward each, prices, open usage and this month's metered
// totals. It signs in the owners of loadUsers tenants spread over the
// region and returns them.
func seedLoad(b *testing.B, e *env, url string) []loadUser {
	b.Helper()
	ctx := context.Background()
	var hostIDs []string
	for i := range 10 {
		h, err := e.st.CreateHost(ctx, store.Actor{Email: "bench"}, store.HostInput{Name: fmt.Sprintf("kvm-load-%d", i), URI: "test:///default"})
		if err != nil {
			b.Fatal(err)
		}
		facts := store.Facts{CPUModel: "test", Cores: 256, MemoryMiB: 4 << 20, DiskGiB: 1 << 20, DiskFreeGiB: 1 << 20}
		if err := e.st.RecordHostFacts(ctx, h.ID, facts, ""); err != nil {
			b.Fatal(err)
		}
		hostIDs = append(hostIDs, h.ID)
	}
	img := e.image("debian-12")
	plans, err := e.st.ListPlans(ctx, true)
	if err != nil || len(plans) == 0 {
		b.Fatalf("plans %v %v", plans, err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), 4)
	if err != nil {
		b.Fatal(err)
	}

	db := openSeeder(b, url)
	ts := time.Now().UTC().Truncate(time.Microsecond)
	month := store.MonthOf(ts)
	monthStart, _, _ := store.MonthBounds(month)
	since := monthStart.AddDate(0, -2, 0)
	hoursIn := int64(ts.Sub(monthStart) / time.Hour)

	var (
		tenants  []store.Tenant
		users    []store.User
		keys     []store.SSHKey
		vms      []store.VM
		vmKeys   []map[string]any
		forwards []store.PortForward
		records  []store.UsageRecord
		totals   []store.UsageTotal
		prices   []store.Price
		owners   = make([]store.User, loadTenants)
	)
	for _, p := range plans {
		prices = append(prices, store.Price{ID: uuid.NewString(), Item: store.PlanItem(p.ID), HourlyMicros: 6000 * p.VCPUs,
			MonthlyCapMinor: 400 * p.VCPUs, BillStopped: true, EffectiveFrom: since, CreatedBy: "bench", CreatedAt: since})
	}
	prices = append(prices, store.Price{ID: uuid.NewString(), Item: store.ItemPortForward, HourlyMicros: 1000,
		MonthlyCapMinor: 100, EffectiveFrom: since, CreatedBy: "bench", CreatedAt: since})
	for t := range loadTenants {
		ten := store.Tenant{ID: uuid.NewString(), Name: fmt.Sprintf("Load Tenant %04d", t), Slug: fmt.Sprintf("load-%04d", t),
			Status: store.TenantActive, QuotaInstances: 25, QuotaVCPUs: 64, QuotaMemoryMiB: 256 << 10, QuotaDiskGiB: 4000,
			QuotaSSHKeys: 10, QuotaPortForwards: 5, CreatedAt: since, UpdatedAt: since}
		tenants = append(tenants, ten)
		owner := store.User{ID: uuid.NewString(), Email: fmt.Sprintf("owner%04d@load.example", t), PasswordHash: string(hash),
			TenantID: &ten.ID, Role: store.RoleOwner, CreatedAt: since, UpdatedAt: since}
		member := store.User{ID: uuid.NewString(), Email: fmt.Sprintf("member%04d@load.example", t), PasswordHash: string(hash),
			TenantID: &ten.ID, Role: store.RoleMember, CreatedAt: since, UpdatedAt: since}
		users = append(users, owner, member)
		owners[t] = owner
		var tenantKeys []string
		for k := range 3 {
			id := uuid.NewString()
			tenantKeys = append(tenantKeys, id)
			keys = append(keys, store.SSHKey{ID: id, TenantID: ten.ID, Name: fmt.Sprintf("laptop-%d", k), Type: "ssh-ed25519", Bits: 256,
				Fingerprint: fmt.Sprintf("SHA256:load%04d%d", t, k), PublicKey: "ssh-ed25519 AAAA" + id, CreatedBy: owner.Email, CreatedAt: since})
		}
		for v := range loadVMs {
			p := plans[(t+v)%len(plans)]
			created := since.Add(time.Duration(t*loadVMs+v) * time.Second)
			host := hostIDs[(t+v)%len(hostIDs)]
			vm := store.VM{ID: uuid.NewString(), TenantID: ten.ID, Name: fmt.Sprintf("vm-%02d", v), PlanID: p.ID, ImageID: img.ID,
				VCPUs: p.VCPUs, MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB, State: store.VMRunning, DesiredState: store.VMRunning,
				IP: fmt.Sprintf("10.%d.%d.%d", t/250, t%250, v+10), CreatedBy: owner.Email, CreatedAt: created, UpdatedAt: created,
				HostID: &host, MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", t>>8, t&0xff, v), MetadataToken: uuid.NewString()}
			class := store.UsageRunning
			if v%10 == 9 {
				vm.State, vm.DesiredState, class = store.VMStopped, store.VMStopped, store.UsageStopped
			}
			vms = append(vms, vm)
			vmKeys = append(vmKeys, map[string]any{"vm_id": vm.ID, "ssh_key_id": tenantKeys[v%len(tenantKeys)]})
			records = append(records, store.UsageRecord{ID: uuid.NewString(), TenantID: ten.ID, ResourceKind: store.ResourceVM,
				ResourceID: vm.ID, ResourceName: vm.Name, Item: store.PlanItem(p.ID), Class: class, StartedAt: created})
			totals = append(totals, store.UsageTotal{Month: month, ResourceKind: store.ResourceVM, ResourceID: vm.ID, PriceID: prices[(t+v)%len(plans)].ID,
				TenantID: ten.ID, ResourceName: vm.Name, Item: store.PlanItem(p.ID), Hours: hoursIn, AmountMinor: min(hoursIn*6*p.VCPUs/10, 400*p.VCPUs), MeteredUntil: ts.Truncate(time.Hour)})
		}
		fw := store.PortForward{ID: uuid.NewString(), TenantID: ten.ID, VMID: vms[len(vms)-loadVMs].ID, PublicPort: 20000 + t,
			TargetPort: 22, Protocol: "tcp", CreatedBy: owner.Email, CreatedAt: since}
		forwards = append(forwards, fw)
		records = append(records, store.UsageRecord{ID: uuid.NewString(), TenantID: ten.ID, ResourceKind: store.ResourcePortForward,
			ResourceID: fw.ID, ResourceName: fmt.Sprintf("%d", fw.PublicPort), Item: store.ItemPortForward, Class: store.UsageActive, StartedAt: since})
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		for _, rows := range []any{&prices, &tenants, &users, &keys, &vms} {
			if err := tx.CreateInBatches(rows, 500).Error; err != nil {
				return err
			}
		}
		if err := tx.Table("vm_ssh_keys").CreateInBatches(vmKeys, 500).Error; err != nil {
			return err
		}
		for _, rows := range []any{&forwards, &records, &totals} {
			if err := tx.CreateInBatches(rows, 500).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	if sq, err := db.DB(); err == nil {
		_ = sq.Close()
	}

	out := make([]loadUser, loadUsers)
	for i := range out {
		u := owners[i*loadTenants/loadUsers]
		addr := net.IPv4(127, 0, 1+byte(i/250), 1+byte(i%250))
		cookie, _, err := e.srv.issueSession(ctx, u, store.SessionWeb, addr.String(), "load")
		if err != nil {
			b.Fatal(err)
		}
		bearer, _, err := e.srv.issueSession(ctx, u, store.SessionAPI, addr.String(), "load")
		if err != nil {
			b.Fatal(err)
		}
		out[i] = loadUser{tenant: u.Tenant(), cookie: cookie, bearer: bearer, addr: addr}
	}
	return out
}

// openSeeder opens a second, plain connection to the benchmark's database
// for bulk inserts the store has no call for.
func openSeeder(b *testing.B, url string) *gorm.DB {
	b.Helper()
	var dial gorm.Dialector
	if filepath.IsAbs(url) {
		dial = sqlite.Open("file:" + url + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_txlock=immediate")
	} else {
		dial = postgres.Open(url)
	}
	db, err := gorm.Open(dial, &gorm.Config{Logger: logger.Discard, CreateBatchSize: 500})
	if err != nil {
		b.Fatal(err)
	}
	return db
}
