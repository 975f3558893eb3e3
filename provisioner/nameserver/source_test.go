package nameserver_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestStoreSource serves a tenant record from a real (SQLite) store and
// sees the serial move when the tenant adds one.
func TestStoreSource(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "f.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ten, u, err := st.SignUp(ctx, store.Actor{}, "acme", "ops@example.com", "h")
	if err != nil {
		t.Fatal(err)
	}
	a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID}
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
