package nameserver

import (
	"context"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// snapshotter is the part of the store the name server reads.
type snapshotter interface {
	DNSSnapshot(ctx context.Context) (store.DNSZone, error)
}

// StoreSource reads the zone from the shared database.
func StoreSource(st snapshotter) Source { return storeSource{st} }

type storeSource struct{ st snapshotter }

func (s storeSource) Snapshot(ctx context.Context) (Zone, error) {
	dz, err := s.st.DNSSnapshot(ctx)
	if err != nil {
		return Zone{}, err
	}
	return FromStore(dz), nil
}

// FromStore turns the store's view of the zone into names relative to the
// region zone: <vm>.<tenant>, <record>.<tenant> and <machine>.machines.
func FromStore(dz store.DNSZone) Zone {
	z := Zone{Serial: dz.Serial, Networks: dz.Subnets}
	for _, h := range dz.Hosts {
		host := Host{Name: h.Name + "." + h.TenantSlug, Addr: h.IP, Internal: h.Internal}
		switch h.PTR {
		case "":
		case "@":
			host.PTR = h.TenantSlug
		default:
			host.PTR = h.PTR + "." + h.TenantSlug
		}
		z.Hosts = append(z.Hosts, host)
	}
	for _, r := range dz.Records {
		name := r.TenantSlug
		if r.Name != "@" {
			name = r.Name + "." + r.TenantSlug
		}
		z.Records = append(z.Records, Record{Name: name, Type: r.Type, Value: r.Value,
			TTL: uint32(max(r.TTL, 0)), Priority: uint16(min(max(r.Priority, 0), 65535))})
	}
	return z
}
