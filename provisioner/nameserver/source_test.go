package nameserver_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestStoreSource serves a tenant record from a real (SQLite) store and
// sees the serial move when the tenant adds one.
func TestStoreSource(t *testing.T) {
	ctx := context.Background()
	st, ten, a := storeWithTenant(t)
	if _, err := st.CreateDNSRecord(ctx, a, ten.ID, store.DNSRecordInput{Name: "@", Type: "MX", Value: "mail.example.com", Priority: 5}); err != nil {
		t.Fatal(err)
	}
	srv, err := nameserver.New(baseConfig(), nameserver.StoreSource(st), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before := srv.Serial()
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		w := &fakeWriter{remote: loopbackUDP}
		if _, err := srv.ServeDNS(ctx, w, m); err != nil {
			t.Fatal(err)
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(w.out); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := ask("acme.cloud.internal.", dns.TypeMX); len(r.Answer) != 1 || r.Answer[0].(*dns.MX).Mx != "mail.example.com." {
		t.Fatalf("MX from the store: %v", r)
	}
	if _, err := st.CreateDNSRecord(ctx, a, ten.ID, store.DNSRecordInput{Name: "www", Type: "A", Value: "192.0.2.8"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Serial() <= before {
		t.Errorf("serial %d after a change, was %d", srv.Serial(), before)
	}
	if r := ask("www.acme.cloud.internal.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("new record not served: %v", r)
	}
}

// TestStoreSourceMachines serves a machine from a real (SQLite) store at its
// reserved address, to the LAN only.
func TestStoreSourceMachines(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	staff := store.Actor{Email: "ops@isp.example"}
	if _, err := st.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:dd:00:01"}}); err != nil {
		t.Fatal(err)
	}
	sn, err := st.CreateBootSubnet(ctx, staff, store.BootSubnetInput{Name: "rack", CIDR: "10.213.0.0/24", Gateway: "10.213.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddReservation(ctx, staff, "52:54:00:dd:00:01", sn.ID, "10.213.0.50", "node-1"); err != nil {
		t.Fatal(err)
	}
	srv, err := nameserver.New(baseConfig(), nameserver.StoreSource(st), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	lan, wanSrc := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.1")
	ask := func(name string, qtype uint16, src netip.Addr) summary {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return summarize(slowAnswer(t, srv, wire, src))
	}
	if got := ask("node-1.machines.cloud.internal.", dns.TypeA, lan); len(got.Answer) != 1 || !strings.HasSuffix(got.Answer[0], "A 10.213.0.50") {
		t.Errorf("lan A: %+v", got)
	}
	if got := ask("50.0.213.10.in-addr.arpa.", dns.TypePTR, lan); len(got.Answer) != 1 || !strings.HasSuffix(got.Answer[0], "PTR node-1.machines.cloud.internal.") {
		t.Errorf("lan PTR: %+v", got)
	}
	if got := ask("node-1.machines.cloud.internal.", dns.TypeA, wanSrc); got.Rcode != "NXDOMAIN" {
		t.Errorf("wan A: %+v", got)
	}
}

// TestSuspensionWithdrawsDNS runs the server on a real (SQLite) store and
// asks it with dig: a suspended tenant's records leave DNS at the next
// refresh, and come back when the suspension is lifted.
func TestSuspensionWithdrawsDNS(t *testing.T) {
	needTool(t, "dig", "bind9-dnsutils")
	ctx := context.Background()
	st, ten, a := storeWithTenant(t)
	if _, err := st.CreateDNSRecord(ctx, a, ten.ID, store.DNSRecordInput{Name: "www", Type: "A", Value: "192.0.2.8"}); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.Refresh = 200 * time.Millisecond
	srv, err := nameserver.New(cfg, nameserver.StoreSource(st), nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, ln, err := nameserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, pc, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	answers := func() bool {
		return strings.Contains(digFlat(t, port, "www.acme.cloud.internal", "A"), "IN A 192.0.2.8")
	}
	within := func(what string, want bool) {
		t.Helper()
		start := time.Now()
		for !time.Now().After(start.Add(10 * time.Second)) {
			if answers() == want {
				t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: not within 10 s", what)
	}
	within("record served", true)
	staff := store.Actor{Email: "staff@example.com"}
	if err := st.SuspendTenant(ctx, staff, ten.ID, "unpaid invoice"); err != nil {
		t.Fatal(err)
	}
	within("record withdrawn", false)
	if out := digFlat(t, port, "www.acme.cloud.internal", "A"); !strings.Contains(out, "status: NXDOMAIN") {
		t.Errorf("a suspended tenant's name: %s", out)
	}
	if err := st.UnsuspendTenant(ctx, staff, ten.ID); err != nil {
		t.Fatal(err)
	}
	within("record restored", true)
}

// openStore is a migrated SQLite store for one test.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "f.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// storeWithTenant is openStore with the tenant acme and its owner.
func storeWithTenant(t *testing.T) (*store.Store, store.Tenant, store.Actor) {
	t.Helper()
	st := openStore(t)
	ten, u, err := st.SignUp(context.Background(), store.Actor{}, "acme", "ops@example.com", "h")
	if err != nil {
		t.Fatal(err)
	}
	return st, ten, store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
}
