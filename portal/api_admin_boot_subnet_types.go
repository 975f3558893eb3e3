package portal

import (
	"context"
	"encoding/binary"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// JSON shapes of the boot subnets the DHCP server answers on, with their
// reservations and leases, for staff.

type bootSubnetJSON struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	CIDR             string    `json:"cidr"`
	Gateway          string    `json:"gateway"`
	DNSServers       []string  `json:"dns_servers"`
	RangeStart       string    `json:"range_start"`
	RangeEnd         string    `json:"range_end"`
	LeaseSeconds     int64     `json:"lease_seconds"`
	Size             int64     `json:"size"`
	Used             int64     `json:"used"`
	Free             int64     `json:"free"`
	ReservationCount int       `json:"reservation_count"`
	CreatedAt        time.Time `json:"created_at"`
}

type bootSubnetDetailJSON struct {
	bootSubnetJSON
	Reservations []reservationJSON `json:"reservations"`
}

type reservationJSON struct {
	MAC       string    `json:"mac"`
	SubnetID  string    `json:"subnet_id"`
	IP        string    `json:"ip"`
	Hostname  string    `json:"hostname"`
	CreatedAt time.Time `json:"created_at"`
}

type leaseJSON struct {
	IP        string    `json:"ip"`
	MAC       string    `json:"mac"` // empty for a declined address
	Hostname  string    `json:"hostname"`
	State     string    `json:"state"`
	Reserved  bool      `json:"reserved"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
}

type bootSubnetRequest struct {
	Name         string   `json:"name"`
	CIDR         string   `json:"cidr"`
	Gateway      string   `json:"gateway"`
	DNSServers   []string `json:"dns_servers"`
	RangeStart   string   `json:"range_start"`
	RangeEnd     string   `json:"range_end"`
	LeaseSeconds int64    `json:"lease_seconds"`
}

type reservationRequest struct {
	MAC      string `json:"mac"`
	IP       string `json:"ip"`
	Hostname string `json:"hostname"`
}

// Lease states as staff see them: held now, run out (the address may go to
// another MAC), or held by no MAC because a client reported it in use.
const (
	leaseActive   = "active"
	leaseExpired  = "expired"
	leaseDeclined = "declined"
)

func leaseStates() []string { return []string{leaseActive, leaseExpired, leaseDeclined} }

// declinedMAC is how the store marks the holder of a declined address
// (see store.Decline): a prefix no MAC address has.
const declinedMAC = "declined/"

// bootSubnetState is a boot subnet with what it holds at one moment: its
// reservations, its leases and how much of the dynamic range is taken.
type bootSubnetState struct {
	store.BootSubnet
	Reservations []store.Reservation
	Leases       []store.Lease
	// Size is the number of addresses in the dynamic range; Used those
	// with a lease that has not run out.
	Size, Used int64
	At         time.Time
}

func (b bootSubnetState) Free() int64 { return b.Size - b.Used }

// loadBootSubnetState reads a boot subnet's reservations and leases. A row
// whose figures no longer parse shows an empty range rather than failing
// the page that lists it.
func (s *Server) loadBootSubnetState(ctx context.Context, sn store.BootSubnet, at time.Time) (bootSubnetState, error) {
	res, err := s.store.ListReservations(ctx, sn.ID)
	if err != nil {
		return bootSubnetState{}, err
	}
	leases, err := s.store.ListLeases(ctx, sn.ID)
	if err != nil {
		return bootSubnetState{}, err
	}
	b := bootSubnetState{BootSubnet: sn, Reservations: res, Leases: leases, At: at}
	n, err := sn.Net()
	if err != nil || !n.Start.IsValid() {
		return b, nil
	}
	b.Size = addrNumber(n.End) - addrNumber(n.Start) + 1
	for _, l := range leases {
		if n.InRange(l.IP) && l.ExpiresAt.After(at) {
			b.Used++
		}
	}
	return b, nil
}

// bootSubnetStates loads every boot subnet with its figures.
func (s *Server) bootSubnetStates(ctx context.Context) ([]bootSubnetState, error) {
	subnets, err := s.store.ListBootSubnets(ctx)
	if err != nil {
		return nil, err
	}
	at := time.Now().UTC()
	out := make([]bootSubnetState, len(subnets))
	for i, sn := range subnets {
		if out[i], err = s.loadBootSubnetState(ctx, sn, at); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bootSubnetOf finds the boot subnet named by the path (id or name) with
// its figures.
func (s *Server) bootSubnetOf(c *fiber.Ctx) (bootSubnetState, error) {
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return bootSubnetState{}, err
	}
	return s.loadBootSubnetState(ctx, sn, time.Now().UTC())
}

func addrNumber(a netip.Addr) int64 {
	b := a.As4()
	return int64(binary.BigEndian.Uint32(b[:]))
}

// leaseState tells how a lease stands at a moment.
func leaseState(l store.Lease, at time.Time) string {
	switch {
	case !l.ExpiresAt.After(at):
		return leaseExpired
	case strings.HasPrefix(l.MAC, declinedMAC):
		return leaseDeclined
	}
	return leaseActive
}

// reservedLease tells whether a lease is a reservation's address.
func (b bootSubnetState) reservedLease(l store.Lease) bool {
	for _, r := range b.Reservations {
		if r.MAC == l.MAC && r.IP == l.IP.String() {
			return true
		}
	}
	return false
}

// subnetReservation finds the boot subnet named by the path (id or name)
// and its reservation of the MAC in the path; a MAC reserved in another
// subnet is not found here.
func (s *Server) subnetReservation(c *fiber.Ctx) (store.BootSubnet, store.Reservation, error) {
	ctx := c.UserContext()
	sn, err := s.store.GetBootSubnet(ctx, c.Params("id"))
	if err != nil {
		return sn, store.Reservation{}, err
	}
	raw, err := url.PathUnescape(c.Params("mac"))
	if err != nil {
		return sn, store.Reservation{}, errNotFound("reservation")
	}
	mac, err := store.NormalizeMAC(raw)
	if err != nil {
		return sn, store.Reservation{}, err
	}
	res, err := s.store.ListReservations(ctx, sn.ID)
	if err != nil {
		return sn, store.Reservation{}, err
	}
	for _, r := range res {
		if r.MAC == mac {
			return sn, r, nil
		}
	}
	return sn, store.Reservation{}, errNotFound("reservation")
}

// bootSubnetInputError names the store's dynamic range fields the way the
// API and the form do (range_start, range_end).
func bootSubnetInputError(err error) error {
	e, ok := store.AsError(err)
	if !ok {
		return err
	}
	switch e.Field {
	case "dynamic_start":
		return store.E(e.Kind, "range_start", e.Message)
	case "dynamic_end":
		return store.E(e.Kind, "range_end", e.Message)
	}
	return err
}

func toBootSubnetJSON(b bootSubnetState) bootSubnetJSON {
	return bootSubnetJSON{ID: b.ID, Name: b.Name, CIDR: b.CIDR, Gateway: b.Gateway, DNSServers: splitList(b.DNSServers),
		RangeStart: b.DynamicStart, RangeEnd: b.DynamicEnd, LeaseSeconds: b.LeaseSeconds, Size: b.Size, Used: b.Used,
		Free: b.Free(), ReservationCount: len(b.Reservations), CreatedAt: utc(b.CreatedAt)}
}

func toBootSubnetDetailJSON(b bootSubnetState) bootSubnetDetailJSON {
	out := bootSubnetDetailJSON{bootSubnetJSON: toBootSubnetJSON(b), Reservations: make([]reservationJSON, len(b.Reservations))}
	for i, r := range b.Reservations {
		out.Reservations[i] = toReservationJSON(r)
	}
	return out
}

func toReservationJSON(r store.Reservation) reservationJSON {
	return reservationJSON{MAC: r.MAC, SubnetID: r.SubnetID, IP: r.IP, Hostname: r.Hostname, CreatedAt: utc(r.CreatedAt)}
}

func (b bootSubnetState) toLeaseJSON(l store.Lease) leaseJSON {
	out := leaseJSON{IP: l.IP.String(), MAC: l.MAC, Hostname: l.Hostname, State: leaseState(l, b.At), Reserved: b.reservedLease(l),
		ExpiresAt: utc(l.ExpiresAt), CreatedAt: utc(l.CreatedAt)}
	if strings.HasPrefix(l.MAC, declinedMAC) {
		out.MAC = ""
	}
	return out
}

// pageOfSlice cuts one page out of a list held in memory.
func pageOfSlice[T any](all []T, p store.Page) []T {
	per := p.PerPage
	if per <= 0 {
		per = store.DefaultPerPage
	}
	per = min(per, store.MaxPerPage)
	from := min((max(p.Number, 1)-1)*per, len(all))
	return all[from:min(from+per, len(all))]
}
