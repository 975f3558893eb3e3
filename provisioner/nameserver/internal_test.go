package nameserver_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/fibrixcloud/fibrix/provisioner/nameserver"
)

// machineZone is testZone with a boot network and a machine on it.
func machineZone() nameserver.Zone {
	z := testZone(5)
	z.Hosts = append(z.Hosts, nameserver.Host{Name: "node-1.machines", Addr: netip.MustParseAddr("10.213.0.50"), Internal: true})
	z.Networks = append(z.Networks, netip.MustParsePrefix("10.213.0.0/24"))
	return z
}

// TestInternalHosts answers machine names and their PTRs to the LAN only;
// the WAN gets NXDOMAIN for them and for the machine subzone itself, the
// same from the full handler and the fast path.
func TestInternalHosts(t *testing.T) {
	cfg := baseConfig()
	cfg.LANNetworks = lanNets("10.0.0.0/8")
	srv := loaded(t, cfg, machineZone())
	lan, wanSrc := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
		src   netip.Addr
		want  summary
	}{
		{"lan A", "node-1.machines.cloud.internal.", dns.TypeA, lan,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"node-1.machines.cloud.internal. 300 IN A 10.213.0.50"}}},
		{"lan A 0x20", "NODE-1.Machines.cloud.internal.", dns.TypeA, lan,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"node-1.machines.cloud.internal. 300 IN A 10.213.0.50"}}},
		{"lan PTR", "50.0.213.10.in-addr.arpa.", dns.TypePTR, lan,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"50.0.213.10.in-addr.arpa. 300 IN PTR node-1.machines.cloud.internal."}}},
		{"lan nodata", "node-1.machines.cloud.internal.", dns.TypeAAAA, lan, summary{Rcode: "NOERROR", AA: true, AuthSOA: true}},
		{"lan subzone is an empty name", "machines.cloud.internal.", dns.TypeA, lan, summary{Rcode: "NOERROR", AA: true, AuthSOA: true}},
		{"lan unknown machine", "node-2.machines.cloud.internal.", dns.TypeA, lan, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"wan A", "node-1.machines.cloud.internal.", dns.TypeA, wanSrc, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"wan AAAA", "node-1.machines.cloud.internal.", dns.TypeAAAA, wanSrc, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"wan TXT", "node-1.machines.cloud.internal.", dns.TypeTXT, wanSrc, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"wan subzone", "machines.cloud.internal.", dns.TypeA, wanSrc, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"wan below", "x.node-1.machines.cloud.internal.", dns.TypeA, wanSrc, summary{Rcode: "NXDOMAIN", AA: true, AuthSOA: true}},
		{"wan PTR", "50.0.213.10.in-addr.arpa.", dns.TypePTR, wanSrc, summary{Rcode: "REFUSED"}},
		{"wan still sees vms", "web.acme.cloud.internal.", dns.TypeA, wanSrc,
			summary{Rcode: "NOERROR", AA: true, AnswerLen: 1, Answer: []string{"web.acme.cloud.internal. 300 IN A 203.0.113.7"}}},
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
	// ANY only goes through the full handler; it must not leak either.
	m := new(dns.Msg)
	m.SetQuestion("node-1.machines.cloud.internal.", dns.TypeANY)
	wire, _ := m.Pack()
	if got := summarize(slowAnswer(t, srv, wire, wanSrc)); got.Rcode != "NXDOMAIN" || got.AnswerLen != 0 {
		t.Errorf("ANY from wan: %+v", got)
	}
	if got := summarize(slowAnswer(t, srv, wire, lan)); got.Rcode != "NOERROR" || got.AnswerLen != 1 {
		t.Errorf("ANY from lan: %+v", got)
	}
}

// TestInternalHostsZoneFile keeps machines out of what the WAN view
// transfers, and in the LAN one.
func TestInternalHostsZoneFile(t *testing.T) {
	for _, lan := range []bool{true, false} {
		var b strings.Builder
		if err := nameserver.WriteZoneFile(&b, baseConfig(), machineZone(), lan); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "machines"); got != lan {
			t.Errorf("lan=%v: zone mentions machines: %v\n%s", lan, got, b.String())
		}
	}
}
