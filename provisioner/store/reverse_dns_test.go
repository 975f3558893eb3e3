package store_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

const testZone = "cloud.internal"

// ptrState is what a test compares after each step: the VM's reverse name
// as the store keeps it and publishes it, and the zone serial.
type ptrState struct {
	Name      string // GetReverseDNS
	Published string // the DNS snapshot's PTR for the VM
	Serial    uint32
}

func ptrOf(t *testing.T, s *store.Store, f fixture, vmID string) ptrState {
	t.Helper()
	ctx := context.Background()
	r, err := s.GetReverseDNS(ctx, f.tenant.ID, vmID)
	if err != nil {
		t.Fatal(err)
	}
	z, err := s.DNSSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := ptrState{Name: r.Name, Serial: z.Serial}
	for _, h := range z.Hosts {
		if h.TenantSlug == f.tenant.Slug && h.Name == r.VMName {
			st.Published = h.PTR
		}
	}
	return st
}

func addRecord(t *testing.T, s *store.Store, f fixture, name, typ, value string) store.DNSRecord {
	t.Helper()
	r, err := s.CreateDNSRecord(context.Background(), f.actor, f.tenant.ID, store.DNSRecordInput{Name: name, Type: typ, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReverseDNSValidation refuses every name that is not a host name in
// the tenant's subzone resolving to the VM's address, naming the problem
// and changing nothing, and accepts the names that do.
func TestReverseDNSValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "acme")
		rival := setup(t, s, "rival")
		addLAN(t, s)
		web := runningVM(t, s, f, "web") // 10.30.0.10
		db := runningVM(t, s, f, "db")   // 10.30.0.11
		if web.IP != "10.30.0.10" || db.IP != "10.30.0.11" {
			t.Fatalf("addresses %s and %s", web.IP, db.IP)
		}
		addRecord(t, s, f, "mail", "A", web.IP)
		addRecord(t, s, f, "elsewhere", "A", "192.0.2.1")
		addRecord(t, s, f, "alias", "CNAME", "web.acme.cloud.internal")
		addRecord(t, s, f, "txtonly", "TXT", "hello")
		addRecord(t, s, rival, "mail", "A", web.IP) // another tenant's name for our address

		set := func(name string) (store.ReverseDNS, error) {
			return s.SetReverseDNS(ctx, f.actor, f.tenant.ID, web.ID, store.ReverseDNSInput{Name: name, Zone: testZone})
		}
		before := ptrOf(t, s, f, web.ID)
		if before.Name != "" || before.Published != "" {
			t.Fatalf("a new VM has a reverse name: %+v", before)
		}
		for _, tc := range []struct {
			name, in string
			kind     error
			msg      string
		}{
			{"underscore", "we_b.acme.cloud.internal", store.ErrInvalid, "must be a host name"},
			{"label of 64", strings.Repeat("a", 64) + ".acme.cloud.internal", store.ErrInvalid, "must be a host name"},
			{"empty label", "a..acme.cloud.internal", store.ErrInvalid, "must be a host name"},
			{"leading dash", "-a.acme.cloud.internal", store.ErrInvalid, "must be a host name"},
			{"space inside", "a b.acme.cloud.internal", store.ErrInvalid, "must be a host name"},
			{"too long", strings.Repeat("abcdefghi.", 25) + "acme.cloud.internal", store.ErrInvalid, "at most 253"},
			{"two final dots", "mail.acme.cloud.internal..", store.ErrInvalid, "must be a host name"},
			{"one label", "mail", store.ErrInvalid, "give the full name, e.g. mail.acme.cloud.internal"},
			{"outside our zone", "mail.example.com", store.ErrInvalid, "not in your zone acme.cloud.internal"},
			{"another tenant's subzone", "mail.rival.cloud.internal", store.ErrInvalid, "not in your zone acme.cloud.internal"},
			{"the region zone", "cloud.internal", store.ErrInvalid, "not in your zone"},
			{"unknown name", "nothing.acme.cloud.internal", store.ErrInvalid, "nothing.acme.cloud.internal does not resolve to 10.30.0.10"},
			{"only a TXT there", "txtonly.acme.cloud.internal", store.ErrInvalid, "does not resolve to 10.30.0.10"},
			{"apex without address", "acme.cloud.internal", store.ErrInvalid, "does not resolve to 10.30.0.10"},
			{"record elsewhere", "elsewhere.acme.cloud.internal", store.ErrInvalid, "resolves to 192.0.2.1, not to web's address 10.30.0.10"},
			{"another vm's name", "db.acme.cloud.internal", store.ErrInvalid, "resolves to 10.30.0.11, not to web's address 10.30.0.10"},
			{"a cname", "alias.acme.cloud.internal", store.ErrInvalid, "is a CNAME"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := set(tc.in)
				e, ok := store.AsError(err)
				if kindOf(err) != tc.kind || !ok || e.Field != "ptr" || !strings.Contains(e.Message, tc.msg) {
					t.Fatalf("err = %v, want %v on ptr saying %q", err, tc.kind, tc.msg)
				}
				if diff := cmp.Diff(before, ptrOf(t, s, f, web.ID)); diff != "" {
					t.Errorf("a refusal changed something (-before +after):\n%s", diff)
				}
			})
		}
		fails, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "dns.ptr.", Result: store.ResultFailure}, store.Page{PerPage: 100})
		if err != nil || len(fails) != 17 {
			t.Errorf("%d failures audited, want 17: %v", len(fails), err)
		}

		for _, tc := range []struct {
			name, in, want string
		}{
			{"a record, any case, final dot", " Mail.ACME.cloud.internal. ", "mail"},
			{"own name is the default", "web.acme.cloud.internal", ""},
			{"apex record", "acme.cloud.internal", "@"},
			{"cleared", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.want == "@" {
					addRecord(t, s, f, "@", "A", web.IP)
				}
				old := ptrOf(t, s, f, web.ID)
				r, err := set(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if r.Name != tc.want || r.Address != netip.MustParseAddr(web.IP) || r.VMID != web.ID {
					t.Errorf("set %q: %+v, want name %q", tc.in, r, tc.want)
				}
				now := ptrOf(t, s, f, web.ID)
				if now.Name != tc.want || now.Published != tc.want {
					t.Errorf("after set %q: %+v", tc.in, now)
				}
				if changed := old.Name != tc.want; changed != (now.Serial > old.Serial) {
					t.Errorf("serial %d → %d; the name changed: %v", old.Serial, now.Serial, changed)
				}
			})
		}
		ok, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "dns.ptr.", Result: store.ResultSuccess}, store.Page{PerPage: 100})
		if err != nil || len(ok) != 4 || ok[0].Action != "dns.ptr.clear" || ok[0].TargetName != "10.30.0.10 PTR web.acme.cloud.internal" ||
			ok[3].Action != "dns.ptr.set" || ok[3].TargetName != "10.30.0.10 PTR mail.acme.cloud.internal" || ok[3].ActorEmail != f.actor.Email {
			t.Errorf("audit %+v %v", ok, err)
		}
	})
}

// TestReverseDNSIsolationAndState keeps other tenants out and refuses VMs
// without an address, being deleted, or of a suspended tenant.
func TestReverseDNSIsolationAndState(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "acme")
		rival := setup(t, s, "rival")
		addLAN(t, s)
		web := runningVM(t, s, f, "web")
		addRecord(t, s, f, "mail", "A", web.IP)
		in := store.ReverseDNSInput{Name: "mail.acme.cloud.internal", Zone: testZone}

		if _, err := s.GetReverseDNS(ctx, rival.tenant.ID, web.ID); kindOf(err) != store.ErrNotFound {
			t.Errorf("another tenant reads: %v", err)
		}
		if _, err := s.SetReverseDNS(ctx, rival.actor, rival.tenant.ID, web.ID, in); kindOf(err) != store.ErrNotFound {
			t.Errorf("another tenant sets: %v", err)
		}
		if _, err := s.SetReverseDNS(ctx, f.actor, f.tenant.ID, "no-such-vm", in); kindOf(err) != store.ErrNotFound {
			t.Errorf("unknown vm: %v", err)
		}

		if err := s.SuspendTenant(ctx, staff, f.tenant.ID, "unpaid"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetReverseDNS(ctx, f.actor, f.tenant.ID, web.ID, in); kindOf(err) != store.ErrSuspended {
			t.Errorf("suspended tenant: %v", err)
		}
		if err := s.UnsuspendTenant(ctx, staff, f.tenant.ID); err != nil {
			t.Fatal(err)
		}

		bare, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "bare", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.GetReverseDNS(ctx, f.tenant.ID, bare.ID)
		if err != nil || r.Address.IsValid() || r.Name != "" {
			t.Errorf("vm without an address: %+v %v", r, err)
		}
		_, err = s.SetReverseDNS(ctx, f.actor, f.tenant.ID, bare.ID, in)
		if e, ok := store.AsError(err); kindOf(err) != store.ErrInvalidTransition || !ok || !strings.Contains(e.Message, "no address yet") {
			t.Errorf("vm without an address: %v", err)
		}
		if ptrOf(t, s, f, web.ID).Name != "" {
			t.Error("a refused request set a name")
		}
	})
}

// TestReverseDNSPerAddress keeps one name per address, lets two addresses
// share a round-robin name, and never lets a name outlive what it stood on:
// the A record it resolved through, or the VM's address.
func TestReverseDNSPerAddress(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "acme")
		addLAN(t, s)
		web := runningVM(t, s, f, "web") // 10.30.0.10
		db := runningVM(t, s, f, "db")   // 10.30.0.11
		set := func(vmID, name string) error {
			_, err := s.SetReverseDNS(ctx, f.actor, f.tenant.ID, vmID, store.ReverseDNSInput{Name: name, Zone: testZone})
			return err
		}
		mail := addRecord(t, s, f, "mail", "A", web.IP)
		addRecord(t, s, f, "www", "A", web.IP)
		addRecord(t, s, f, "www", "A", db.IP)
		if err := set(web.ID, "mail.acme.cloud.internal"); err != nil {
			t.Fatal(err)
		}
		// A second name replaces the first: one per address.
		if err := set(web.ID, "www.acme.cloud.internal"); err != nil {
			t.Fatal(err)
		}
		if got := ptrOf(t, s, f, web.ID); got.Name != "www" || got.Published != "www" {
			t.Errorf("after a second set: %+v", got)
		}
		// A name with an address record for each VM serves both.
		if err := set(db.ID, "www.acme.cloud.internal"); err != nil {
			t.Fatal(err)
		}
		if err := set(db.ID, "mail.acme.cloud.internal"); kindOf(err) != store.ErrInvalid {
			t.Errorf("db takes web's name: %v", err)
		}
		z, err := s.DNSSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range z.Hosts {
			got = append(got, h.IP.String()+" "+h.Name+" "+h.PTR)
		}
		if diff := cmp.Diff([]string{"10.30.0.11 db www", "10.30.0.10 web www"}, got); diff != "" {
			t.Errorf("published (-want +got):\n%s", diff)
		}

		// Deleting the record a name resolves through clears that name only.
		if err := set(web.ID, "mail.acme.cloud.internal"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDNSRecord(ctx, f.actor, f.tenant.ID, mail.ID); err != nil {
			t.Fatal(err)
		}
		if got := ptrOf(t, s, f, web.ID); got.Name != "" || got.Published != "" {
			t.Errorf("name kept after its record went: %+v", got)
		}
		if got := ptrOf(t, s, f, db.ID); got.Name != "www" {
			t.Errorf("another VM's name went with it: %+v", got)
		}
		cleared, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "dns.ptr.clear"}, store.Page{})
		if err != nil || len(cleared) != 1 || cleared[0].TargetID != web.ID || !strings.Contains(cleared[0].Detail, "record mail") {
			t.Errorf("clearing audit: %+v %v", cleared, err)
		}

		// Deleting the VM releases its address and the name with it; the
		// next VM there starts with its own name.
		if err := set(web.ID, "www.acme.cloud.internal"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, web.ID, store.OpDelete); err != nil {
			t.Fatal(err)
		}
		if err := set(web.ID, ""); kindOf(err) != store.ErrInvalidTransition {
			t.Errorf("set while deleting: %v", err)
		}
		if err := s.ReleaseIP(ctx, web.ID); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetReverseDNS(ctx, f.tenant.ID, web.ID); err != nil || r.Address.IsValid() || r.Name != "" {
			t.Errorf("released: %+v %v", r, err)
		}
		next, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "next", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.AllocateIP(ctx, next.ID)
		if err != nil || a.IP.String() != web.IP {
			t.Fatalf("next vm got %v (%v), want %s", a.IP, err, web.IP)
		}
		if got := ptrOf(t, s, f, next.ID); got.Name != "" || got.Published != "" {
			t.Errorf("the address's next VM inherited a name: %+v", got)
		}
	})
}
