package nameserver_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestChosenPTR answers a chosen PTR name only while it resolves to the
// address in our zone, the host's own name otherwise, NXDOMAIN for
// addresses of no host in our reverse zones and REFUSED to the WAN, the
// same from the full handler and the fast path.
func TestChosenPTR(t *testing.T) {
	cfg := baseConfig()
	cfg.LANNetworks = lanNets("10.0.0.0/8")
	srv := loaded(t, cfg, testZone(1))
	lan, wanSrc := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")
	ptr := func(rev, target string) summary {
		return summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{rev + " 300 IN PTR " + target}}
	}
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
		src   netip.Addr
		want  summary
	}{
		{"chosen name", "10.0.20.10.in-addr.arpa.", dns.TypePTR, lan, ptr("10.0.20.10.in-addr.arpa.", "mail.acme.cloud.internal.")},
		{"chosen name resolves back", "mail.acme.cloud.internal.", dns.TypeA, lan,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"mail.acme.cloud.internal. 300 IN A 10.20.0.10"}}},
		{"chosen name is a cname", "11.0.20.10.in-addr.arpa.", dns.TypePTR, lan, ptr("11.0.20.10.in-addr.arpa.", "stale.acme.cloud.internal.")},
		{"chosen name is another address", "12.0.20.10.in-addr.arpa.", dns.TypePTR, lan, ptr("12.0.20.10.in-addr.arpa.", "dup.acme.cloud.internal.")},
		{"default", "5.0.20.10.in-addr.arpa.", dns.TypePTR, lan, ptr("5.0.20.10.in-addr.arpa.", "web.acme.cloud.internal.")},
		{"no host there", "99.0.20.10.in-addr.arpa.", dns.TypePTR, lan, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"below an address", "x.10.0.20.10.in-addr.arpa.", dns.TypePTR, lan, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"other type", "10.0.20.10.in-addr.arpa.", dns.TypeA, lan, summary{Rcode: "NOERROR", AA: true, AuthSOA: true}},
		{"reverse apex", "0.20.10.in-addr.arpa.", dns.TypePTR, lan, summary{Rcode: "NOERROR", AA: true, AuthSOA: true}},
		{"outside our reverse zones", "1.2.0.192.in-addr.arpa.", dns.TypePTR, lan, summary{Rcode: "REFUSED"}},
		{"wan", "10.0.20.10.in-addr.arpa.", dns.TypePTR, wanSrc, summary{Rcode: "REFUSED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(slowAnswer(t, srv, wire, tc.src))); diff != "" {
				t.Errorf("full handler (-want +got):\n%s", diff)
			}
			out, ok := srv.AnswerUDP(nil, wire, tc.src)
			if !ok {
				t.Fatal("fast path did not answer")
			}
			sameAnswer(t, srv, wire, out, tc.src)
		})
	}
}

// TestChosenPTRZoneTransfer carries the published PTRs, not the refused
// choices, in the reverse zone's transfer.
func TestChosenPTRZoneTransfer(t *testing.T) {
	r := start(t, baseConfig(), testZone(3))
	tr := new(dns.Transfer)
	m := new(dns.Msg)
	m.SetAxfr("0.20.10.in-addr.arpa.")
	ch, err := tr.In(m, r.addr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		for _, rr := range env.RR {
			if p, ok := rr.(*dns.PTR); ok {
				got[p.Hdr.Name] = p.Ptr
			}
		}
	}
	want := map[string]string{
		"5.0.20.10.in-addr.arpa.": "web.acme.cloud.internal.", "6.0.20.10.in-addr.arpa.": "db.acme.cloud.internal.",
		"7.0.20.10.in-addr.arpa.": "app.beta.cloud.internal.", "8.0.20.10.in-addr.arpa.": "rack1.machines.cloud.internal.",
		"10.0.20.10.in-addr.arpa.": "mail.acme.cloud.internal.", "11.0.20.10.in-addr.arpa.": "stale.acme.cloud.internal.",
		"12.0.20.10.in-addr.arpa.": "dup.acme.cloud.internal.",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PTRs transferred (-want +got):\n%s", diff)
	}
}

// TestChosenPTRWithDig asks the running server with dig -x and with
// dns.Exchange, over UDP and TCP.
func TestChosenPTRWithDig(t *testing.T) {
	needTool(t, "dig", "bind9-dnsutils")
	r := start(t, baseConfig(), testZone(4))
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"chosen", []string{"-x", "10.20.0.10"}, []string{"status: NOERROR", "flags: qr aa", "10.0.20.10.in-addr.arpa. 300 IN PTR mail.acme.cloud.internal."}},
		{"chosen over tcp", []string{"+tcp", "-x", "10.20.0.10"}, []string{"status: NOERROR", "IN PTR mail.acme.cloud.internal."}},
		{"forward confirmed", []string{"mail.acme.cloud.internal", "A"}, []string{"mail.acme.cloud.internal. 300 IN A 10.20.0.10"}},
		{"unconfirmed choice", []string{"-x", "10.20.0.11"}, []string{"status: NOERROR", "IN PTR stale.acme.cloud.internal."}},
		{"default", []string{"-x", "10.20.0.5"}, []string{"IN PTR web.acme.cloud.internal."}},
		{"unknown address", []string{"-x", "10.20.0.99"}, []string{"status: NXDOMAIN", "flags: qr aa", "AUTHORITY: 1", "0.20.10.in-addr.arpa. 300 IN SOA ns1.cloud.internal."}},
		{"outside our zones", []string{"-x", "192.0.2.1"}, []string{"status: REFUSED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := digFlat(t, r.port, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("dig %v lacks %q:\n%s", tc.args, w, out)
				}
			}
		})
	}
	for _, mod := range [][]func(*dns.Msg, *dns.Client){nil, {overTCP}, {edns(1232)}} {
		got := summarize(query(t, r.addr, "10.0.20.10.in-addr.arpa.", dns.TypePTR, mod...))
		want := summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"10.0.20.10.in-addr.arpa. 300 IN PTR mail.acme.cloud.internal."}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("exchange (-want +got):\n%s", diff)
		}
	}
	if got := summarize(query(t, r.addr, "99.0.20.10.in-addr.arpa.", dns.TypePTR)); got.Rcode != "NXDOMAIN" || !got.AA || !got.AuthSOA {
		t.Errorf("exchange for an unknown address: %+v", got)
	}
}

// TestChosenPTRFromStore goes the customer's way: a VM's address in a real
// (SQLite) store, an A record and the chosen name, then dig -x against the
// running server as the name is set, cleared and loses its record.
func TestChosenPTRFromStore(t *testing.T) {
	needTool(t, "dig", "bind9-dnsutils")
	ctx := context.Background()
	st, ten, a := storeWithTenant(t)
	staff := store.Actor{Email: "staff@example.com"}
	h, err := st.CreateHost(ctx, staff, store.HostInput{Name: "kvm-1", URI: "test:///default"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordHostFacts(ctx, h.ID, store.Facts{CPUModel: "test", Cores: 8, MemoryMiB: 8192, DiskGiB: 100, DiskFreeGiB: 100}, ""); err != nil {
		t.Fatal(err)
	}
	img, err := st.CreateImage(ctx, staff, store.ImageInput{Name: "debian-12", OS: "Debian", Version: "12",
		SourceURL: "https://images.example.com/debian-12.qcow2", Checksum: "sha256:" + fmt.Sprintf("%064x", 1), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.AddSSHKey(ctx, a, ten.ID, "laptop", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "10.40.0.0/24", Gateway: "10.40.0.1",
		RangeStart: "10.40.0.10", RangeEnd: "10.40.0.20"}); err != nil {
		t.Fatal(err)
	}
	vm, err := st.CreateVM(ctx, a, ten.ID, store.VMOrder{Name: "web", Plan: "nano", Image: img.ID, SSHKeys: []string{key.ID}})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := st.AllocateIP(ctx, vm.ID)
	if err != nil || addr.IP.String() != "10.40.0.10" {
		t.Fatalf("address %v: %v", addr.IP, err)
	}
	rec, err := st.CreateDNSRecord(ctx, a, ten.ID, store.DNSRecordInput{Name: "mail", Type: "A", Value: "10.40.0.10"})
	if err != nil {
		t.Fatal(err)
	}

	cfg := baseConfig()
	cfg.Refresh = 100 * time.Millisecond
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
	within := func(what, want string) {
		t.Helper()
		var out string
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
			if out = digFlat(t, port, "-x", "10.40.0.10"); strings.Contains(out, "IN PTR "+want) {
				return
			}
		}
		t.Fatalf("%s: dig -x 10.40.0.10 does not answer %s within 10 s:\n%s", what, want, out)
	}
	set := func(name string) {
		t.Helper()
		if _, err := st.SetReverseDNS(ctx, a, ten.ID, vm.ID, store.ReverseDNSInput{Name: name, Zone: "cloud.internal"}); err != nil {
			t.Fatal(err)
		}
	}
	within("before any choice", "web.acme.cloud.internal.")
	set("mail.acme.cloud.internal")
	within("chosen", "mail.acme.cloud.internal.")
	if out := digFlat(t, port, "-x", "10.40.0.99"); !strings.Contains(out, "status: NXDOMAIN") {
		t.Errorf("an address of no VM: %s", out)
	}
	set("")
	within("cleared", "web.acme.cloud.internal.")
	set("mail.acme.cloud.internal")
	within("chosen again", "mail.acme.cloud.internal.")
	if err := st.DeleteDNSRecord(ctx, a, ten.ID, rec.ID); err != nil {
		t.Fatal(err)
	}
	within("record deleted", "web.acme.cloud.internal.")
}
