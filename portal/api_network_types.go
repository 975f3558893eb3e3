package portal

import (
	"net"
	"strconv"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// JSON shapes of the network edge: port forwards, exposure, DNS records.

type forwardJSON struct {
	ID         string    `json:"id"`
	VM         refJSON   `json:"vm"`
	PublicPort int       `json:"public_port"`
	TargetPort int       `json:"target_port"`
	Protocol   string    `json:"protocol"`
	Address    string    `json:"address"` // where the world connects
	CreatedAt  time.Time `json:"created_at"`
}

func (s *Server) toForwardJSON(f store.PortForward) forwardJSON {
	return forwardJSON{ID: f.ID, VM: refJSON{ID: f.VMID, Name: f.VMName}, PublicPort: f.PublicPort, TargetPort: f.TargetPort,
		Protocol: f.Protocol, Address: net.JoinHostPort(s.cfg.PublicAddress, strconv.Itoa(f.PublicPort)), CreatedAt: utc(f.CreatedAt)}
}

type exposureJSON struct {
	HTTP          bool `json:"http"`
	HTTPS         bool `json:"https"`
	ProxyProtocol bool `json:"proxy_protocol"`
}

// vmExposedJSON is a VM with what of it the forwarder publishes.
type vmExposedJSON struct {
	vmJSON
	Exposure exposureJSON `json:"exposure"`
}

type dnsRecordJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	FQDN      string    `json:"fqdn"`
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	TTL       int       `json:"ttl"`
	Priority  int       `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
}

// subzone is the tenant's own zone: <slug>.<zone>.
func (s *Server) subzone(slug string) string { return slug + "." + s.cfg.Zone }

// dnsRecordFQDN spells a record's full name in the tenant's subzone; "@" is
// the subzone itself.
func (s *Server) dnsRecordFQDN(name, slug string) string {
	if name == "@" || name == "" {
		return s.subzone(slug)
	}
	return name + "." + s.subzone(slug)
}

// toDNSRecordJSON describes a record with its full name.
func (s *Server) toDNSRecordJSON(r store.DNSRecord, slug string) dnsRecordJSON {
	return dnsRecordJSON{ID: r.ID, Name: r.Name, FQDN: s.dnsRecordFQDN(r.Name, slug), Type: r.Type, Value: r.Value, TTL: r.TTL,
		Priority: r.Priority, CreatedAt: utc(r.CreatedAt)}
}

// reverseDNSJSON is the PTR name of a VM's address as the DNS server
// answers it to the ISP's network.
type reverseDNSJSON struct {
	VMID    string `json:"vm_id"`
	Address string `json:"address"` // "" while the VM has none
	PTR     string `json:"ptr"`     // "" while the VM has no address
	Default bool   `json:"default"` // ptr is the VM's own name
}

func (s *Server) toReverseDNSJSON(r store.ReverseDNS, slug string) reverseDNSJSON {
	out := reverseDNSJSON{VMID: r.VMID, Default: !r.Custom()}
	if r.Address.IsValid() {
		out.Address, out.PTR = r.Address.String(), s.reverseName(r, slug)
	}
	return out
}

// reverseName is the full name the address's PTR points at: the chosen
// one, or the VM's own.
func (s *Server) reverseName(r store.ReverseDNS, slug string) string {
	if !r.Custom() {
		return s.dnsName(r.VMName, slug)
	}
	return s.dnsRecordFQDN(r.Name, slug)
}
