package dhcpd_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/fibrixcloud/fibrix/provisioner/dhcpd"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// fakeBackend keeps leases in memory with the store's rules, simplified:
// the MAC's lease, else the requested address if free, else the lowest free.
type fakeBackend struct {
	mu         sync.Mutex
	subnets    []store.BootSubnet
	leases     map[string]map[string]netip.Addr // subnet → mac → ip
	declined   []netip.Addr
	discovered map[string]string // mac → vendor class/arch/user class
}

func newFake(subnets ...store.BootSubnet) *fakeBackend {
	return &fakeBackend{subnets: subnets, leases: map[string]map[string]netip.Addr{}, discovered: map[string]string{}}
}

func (f *fakeBackend) ListBootSubnets(context.Context) ([]store.BootSubnet, error) {
	return f.subnets, nil
}

func (f *fakeBackend) LeaseFrom(_ context.Context, subnetID, mac string, want, _ netip.Addr, now time.Time) (store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sn store.BootSubnet
	for _, s := range f.subnets {
		if s.ID == subnetID {
			sn = s
		}
	}
	n, err := sn.Net()
	if err != nil {
		return store.Lease{}, err
	}
	m := f.leases[subnetID]
	if m == nil {
		m = map[string]netip.Addr{}
		f.leases[subnetID] = m
	}
	held := map[netip.Addr]bool{}
	for _, ip := range m {
		held[ip] = true
	}
	for _, ip := range f.declined {
		held[ip] = true
	}
	give := func(ip netip.Addr) (store.Lease, error) {
		m[mac] = ip
		return store.Lease{SubnetID: subnetID, IP: ip, MAC: mac, ExpiresAt: now.Add(n.LeaseTime)}, nil
	}
	if ip, ok := m[mac]; ok {
		return give(ip)
	}
	if n.InRange(want) && !held[want] {
		return give(want)
	}
	for ip := n.Start; n.Start.IsValid() && !n.End.Less(ip); ip = ip.Next() {
		if !held[ip] {
			return give(ip)
		}
	}
	return store.Lease{}, store.E(store.ErrNoCapacity, "", "boot subnet "+sn.Name+" has no free address")
}

func (f *fakeBackend) Release(_ context.Context, subnetID, mac string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases[subnetID], mac)
	return nil
}

func (f *fakeBackend) Decline(_ context.Context, subnetID, mac string, ip netip.Addr, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leases[subnetID][mac] == ip {
		delete(f.leases[subnetID], mac)
		f.declined = append(f.declined, ip)
	}
	return nil
}

func (f *fakeBackend) RecordDiscovered(_ context.Context, mac, _, vendorClass string, arch int, userClass string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discovered[mac] = fmt.Sprintf("%s/%d/%s", vendorClass, arch, userClass)
	return nil
}

func (f *fakeBackend) leaseOf(subnetID, mac string) (netip.Addr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ip, ok := f.leases[subnetID][mac]
	return ip, ok
}

var (
	rack = store.BootSubnet{ID: "rack", Name: "rack", CIDR: "10.213.0.0/24", Gateway: "10.213.0.1", DNSServers: "10.213.0.1,9.9.9.9",
		DynamicStart: "10.213.0.10", DynamicEnd: "10.213.0.20", LeaseSeconds: 600}
	remote = store.BootSubnet{ID: "remote", Name: "remote", CIDR: "10.214.0.0/24", Gateway: "10.214.0.1",
		DynamicStart: "10.214.0.100", DynamicEnd: "10.214.0.110", LeaseSeconds: 3600}
	serverIP = netip.MustParseAddr("10.213.0.1")
	bootURL  = "http://10.213.0.1:8080/boot"
)

func newHandler(t testing.TB, b dhcpd.Backend, ip netip.Addr) *dhcpd.Handler {
	t.Helper()
	h, err := dhcpd.NewHandler(dhcpd.Config{ServerIP: ip, HTTPBootURL: bootURL + "/"}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// reply is what a test looks at in an answer.
type reply struct {
	Type       string
	To         string
	YourIP     string
	ServerID   string
	Mask       string
	Router     string
	DNS        string
	LeaseSecs  int
	NextServer string // siaddr
	File       string // legacy header field
	Opt66      string
	Opt67      string
	Class      string // option 60 in the reply
	Opt43      string
}

func view(resp *dhcpv4.DHCPv4, dst *net.UDPAddr) *reply {
	if resp == nil {
		return nil
	}
	r := &reply{Type: resp.MessageType().String(), To: dst.String(), ServerID: ipString(resp.ServerIdentifier()),
		File: resp.BootFileName, Opt66: resp.TFTPServerName(), Opt67: resp.BootFileNameOption(), Class: resp.ClassIdentifier()}
	if !resp.YourIPAddr.IsUnspecified() {
		r.YourIP = resp.YourIPAddr.String()
	}
	if !resp.ServerIPAddr.IsUnspecified() {
		r.NextServer = resp.ServerIPAddr.String()
	}
	if m := resp.SubnetMask(); m != nil {
		r.Mask = net.IP(m).String()
	}
	if rt := resp.Router(); len(rt) > 0 {
		r.Router = fmt.Sprint(rt)
	}
	if d := resp.DNS(); len(d) > 0 {
		r.DNS = fmt.Sprint(d)
	}
	r.LeaseSecs = int(resp.IPAddressLeaseTime(0) / time.Second)
	if o := resp.Options.Get(dhcpv4.OptionVendorSpecificInformation); o != nil {
		r.Opt43 = fmt.Sprintf("% x", o)
	}
	return r
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, last} }

func discover(hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		panic(err)
	}
	return m
}

func request(hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, mods...)...)
	if err != nil {
		panic(err)
	}
	return m
}

func pxe(arch iana.Arch) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(fmt.Sprintf("PXEClient:Arch:%05d:UNDI:002001", arch))),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
	}
}

func with(base []dhcpv4.Modifier, more ...dhcpv4.Modifier) []dhcpv4.Modifier {
	return append(append([]dhcpv4.Modifier{}, base...), more...)
}

func ip4(s string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(s)))
}

func serverID(s string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(s)))
}

const broadcast = "255.255.255.255:68"

func rackReply(typ, ip string) *reply {
	return &reply{Type: typ, To: broadcast, YourIP: ip, ServerID: "10.213.0.1", Mask: "255.255.255.0",
		Router: "[10.213.0.1]", DNS: "[10.213.0.1 9.9.9.9]", LeaseSecs: 600}
}

func tftp(r *reply, file string) *reply {
	r.NextServer, r.File, r.Opt66, r.Opt67, r.Opt43 = "10.213.0.1", file, "10.213.0.1", file, "06 01 08"
	return r
}

func httpBoot(r *reply, url string) *reply {
	r.File, r.Opt67 = url, url
	return r
}

// The steps run in order against one handler: leases carry over.
func TestHandler(t *testing.T) {
	fake := newFake(rack, remote)
	h := newHandler(t, fake, serverIP)
	ctx := context.Background()

	steps := []struct {
		name string
		req  *dhcpv4.DHCPv4
		want *reply
	}{
		{"plain client gets an address and no boot options", discover(mac(1)), rackReply("OFFER", "10.213.0.10")},
		{"its request is acknowledged", request(mac(1), ip4("10.213.0.10"), serverID("10.213.0.1")), rackReply("ACK", "10.213.0.10")},
		{"renew keeps the address and answers unicast", request(mac(1), dhcpv4.WithClientIP(net.ParseIP("10.213.0.10"))),
			func() *reply { r := rackReply("ACK", "10.213.0.10"); r.To = "10.213.0.10:68"; return r }()},
		{"a second discover keeps the address", discover(mac(1)), rackReply("OFFER", "10.213.0.10")},
		{"BIOS gets undionly.kpxe over TFTP", discover(mac(2), pxe(iana.INTEL_X86PC)...), tftp(rackReply("OFFER", "10.213.0.11"), "undionly.kpxe")},
		{"x64 UEFI gets ipxe.efi over TFTP", discover(mac(3), pxe(iana.EFI_X86_64)...), tftp(rackReply("OFFER", "10.213.0.12"), "ipxe.efi")},
		{"EFI BC gets ipxe.efi over TFTP", discover(mac(4), pxe(iana.EFI_BC)...), tftp(rackReply("OFFER", "10.213.0.13"), "ipxe.efi")},
		{"UEFI HTTP boot gets ipxe.efi by URL",
			discover(mac(5), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP))),
			func() *reply {
				r := httpBoot(rackReply("OFFER", "10.213.0.14"), bootURL+"/ipxe.efi")
				r.Class = "HTTPClient"
				return r
			}()},
		{"iPXE (raw user class) gets its machine's script", discover(mac(2), with(pxe(iana.INTEL_X86PC), dhcpv4.WithUserClass("iPXE", false))...),
			httpBoot(rackReply("OFFER", "10.213.0.11"), bootURL+"/ipxe/52:54:00:12:34:02")},
		{"iPXE (RFC 3004 user class) gets its machine's script", discover(mac(3), with(pxe(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", true))...),
			httpBoot(rackReply("OFFER", "10.213.0.12"), bootURL+"/ipxe/52:54:00:12:34:03")},
		{"unknown architecture gets an address only", discover(mac(6), pxe(iana.EFI_ARM64)...), rackReply("OFFER", "10.213.0.15")},
		{"relayed request is served from the relay's subnet", discover(mac(7), dhcpv4.WithGatewayIP(net.ParseIP("10.214.0.1"))),
			&reply{Type: "OFFER", To: "10.214.0.1:67", YourIP: "10.214.0.100", ServerID: "10.213.0.1", Mask: "255.255.255.0", Router: "[10.214.0.1]", LeaseSecs: 3600}},
		{"relay from a network we do not manage gets silence", discover(mac(8), dhcpv4.WithGatewayIP(net.ParseIP("192.168.50.1"))), nil},
		{"request for another client's address is refused",
			request(mac(9), ip4("10.213.0.10"), serverID("10.213.0.1")), &reply{Type: "NAK", To: broadcast, ServerID: "10.213.0.1"}},
		{"request for an address on another network is refused", request(mac(1), ip4("192.168.1.5")),
			&reply{Type: "NAK", To: broadcast, ServerID: "10.213.0.1"}},
		{"relayed NAK goes to the relay", request(mac(7), ip4("10.214.0.105"), dhcpv4.WithGatewayIP(net.ParseIP("10.214.0.1"))),
			&reply{Type: "NAK", To: "10.214.0.1:67", ServerID: "10.213.0.1"}},
		{"request naming another server gets silence", request(mac(2), ip4("10.213.0.11"), serverID("10.213.0.250")), nil},
		{"request naming no address gets silence", request(mac(4)), nil},
		{"reply opcode from a client is ignored", func() *dhcpv4.DHCPv4 { m := discover(mac(10)); m.OpCode = dhcpv4.OpcodeBootReply; return m }(), nil},
		{"no message type is ignored", func() *dhcpv4.DHCPv4 { m := discover(mac(10)); m.Options.Del(dhcpv4.OptionDHCPMessageType); return m }(), nil},
		{"a zero MAC is ignored", discover(net.HardwareAddr{0, 0, 0, 0, 0, 0}), nil},
		{"an offer sent to us is ignored", func() *dhcpv4.DHCPv4 {
			m := discover(mac(10))
			m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
			return m
		}(), nil},
		{"release gets no answer", func() *dhcpv4.DHCPv4 {
			m := request(mac(1), dhcpv4.WithClientIP(net.ParseIP("10.213.0.10")), serverID("10.213.0.1"))
			m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRelease))
			return m
		}(), nil},
		{"released address goes to the next client", discover(mac(11)), rackReply("OFFER", "10.213.0.10")},
		{"decline gets no answer", func() *dhcpv4.DHCPv4 {
			m := request(mac(11), ip4("10.213.0.10"), serverID("10.213.0.1"))
			m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeDecline))
			return m
		}(), nil},
		{"after a decline the client gets another address", discover(mac(11)), rackReply("OFFER", "10.213.0.11")},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, dst := h.Handle(ctx, st.req)
			got := view(resp, dst)
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			if resp != nil && (resp.TransactionID != st.req.TransactionID || resp.OpCode != dhcpv4.OpcodeBootReply) {
				t.Errorf("reply xid %s op %s; request xid %s", resp.TransactionID, resp.OpCode, st.req.TransactionID)
			}
		})
	}

	wantDiscovered := map[string]string{
		"52:54:00:12:34:02": "PXEClient:Arch:00000:UNDI:002001/0/iPXE",
		"52:54:00:12:34:03": "PXEClient:Arch:00007:UNDI:002001/7/iPXE",
		"52:54:00:12:34:04": "PXEClient:Arch:00009:UNDI:002001/9/",
		"52:54:00:12:34:05": "HTTPClient:Arch:00016:UNDI:003001/16/",
		"52:54:00:12:34:06": "PXEClient:Arch:00011:UNDI:002001/11/",
	}
	if diff := cmp.Diff(wantDiscovered, fake.discovered); diff != "" {
		t.Errorf("discovered PXE clients (-want +got):\n%s", diff)
	}
	if _, ok := fake.leaseOf("rack", mac(2).String()); ok {
		t.Error("the offer of a client that chose another server is still held")
	}
}

// A server whose own address is in none of the boot subnets (a network it
// does not manage) answers nobody who is not relayed from one.
func TestHandlerForeignNetwork(t *testing.T) {
	h := newHandler(t, newFake(rack), netip.MustParseAddr("172.16.0.1"))
	for name, req := range map[string]*dhcpv4.DHCPv4{
		"discover":      discover(mac(1)),
		"PXE discover":  discover(mac(2), pxe(iana.INTEL_X86PC)...),
		"request":       request(mac(1), ip4("10.213.0.10")),
		"foreign relay": discover(mac(3), dhcpv4.WithGatewayIP(net.ParseIP("172.16.0.254"))),
	} {
		if resp, _ := h.Handle(context.Background(), req); resp != nil {
			t.Errorf("%s: answered %s", name, resp.Summary())
		}
	}
	// A relay on a managed subnet is still served.
	resp, dst := h.Handle(context.Background(), discover(mac(4), dhcpv4.WithGatewayIP(net.ParseIP("10.213.0.1"))))
	if resp == nil || resp.YourIPAddr.String() != "10.213.0.10" || dst.String() != "10.213.0.1:67" {
		t.Errorf("relayed from a managed subnet: %v to %v", resp, dst)
	}
}

func TestHandlePacketGarbage(t *testing.T) {
	h := newHandler(t, newFake(rack), serverIP)
	good := discover(mac(1)).ToBytes()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     good[:100],
		"no cookie": append(append([]byte{}, good[:236]...), 0, 0, 0, 0),
		"text":      []byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		if resp, dst := h.HandlePacket(context.Background(), b, nil); resp != nil {
			t.Errorf("%s: replied %d bytes to %v", name, len(resp), dst)
		}
	}
	if resp, _ := h.HandlePacket(context.Background(), good, nil); resp == nil {
		t.Error("a good discover got no reply")
	}
}

func FuzzHandler(f *testing.F) {
	f.Add(discover(mac(1)).ToBytes())
	f.Add(discover(mac(2), pxe(iana.INTEL_X86PC)...).ToBytes())
	f.Add(discover(mac(3), with(pxe(iana.EFI_X86_64), dhcpv4.WithUserClass("iPXE", false))...).ToBytes())
	f.Add(request(mac(1), ip4("10.213.0.10"), serverID("10.213.0.1")).ToBytes())
	f.Add(discover(mac(7), dhcpv4.WithGatewayIP(net.ParseIP("10.214.0.1"))).ToBytes())
	f.Add([]byte{1, 1, 6, 0})
	h := newHandler(f, newFake(rack, remote), serverIP)
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, dst := h.HandlePacket(context.Background(), b, nil)
		req, err := dhcpv4.FromBytes(b)
		if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) != 6 {
			if resp != nil {
				t.Fatalf("replied to garbage (%v)", err)
			}
			return
		}
		if resp == nil {
			return
		}
		got, err := dhcpv4.FromBytes(resp)
		if err != nil {
			t.Fatalf("our reply does not parse: %v", err)
		}
		if got.OpCode != dhcpv4.OpcodeBootReply || got.TransactionID != req.TransactionID || !got.ServerIdentifier().Equal(net.ParseIP("10.213.0.1")) {
			t.Fatalf("bad reply %s", got.Summary())
		}
		switch got.MessageType() {
		case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck:
			if !got.YourIPAddr.IsUnspecified() {
				yi, _ := netip.AddrFromSlice(got.YourIPAddr.To4())
				if !netip.MustParsePrefix("10.213.0.0/24").Contains(yi) && !netip.MustParsePrefix("10.214.0.0/24").Contains(yi) {
					t.Fatalf("handed out %s", yi)
				}
			}
		case dhcpv4.MessageTypeNak:
		default:
			t.Fatalf("reply type %s", got.MessageType())
		}
		if dst == nil {
			t.Fatal("reply without a destination")
		}
	})
}
