package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// BootSubnet is a network the boot stack serves: DHCP answers only for
// these, with a dynamic range for machines not yet enlisted and fixed
// reservations for known ones.
type BootSubnet struct {
	ID           string
	Name         string
	CIDR         string `gorm:"column:cidr"`
	Gateway      string
	DNSServers   string `gorm:"column:dns_servers"` // comma-separated
	DynamicStart string // "" with DynamicEnd: reservations only
	DynamicEnd   string
	LeaseSeconds int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TableName keeps the table name plain.
func (BootSubnet) TableName() string { return "boot_subnets" }

// BootNet is a boot subnet's figures, parsed.
type BootNet struct {
	Prefix     netip.Prefix
	Gateway    netip.Addr // invalid when there is none
	DNS        []netip.Addr
	Start, End netip.Addr // invalid when there is no dynamic range
	LeaseTime  time.Duration
}

// InRange tells whether ip is in the dynamic range.
func (n BootNet) InRange(ip netip.Addr) bool {
	return n.Start.IsValid() && ip.Is4() && !ip.Less(n.Start) && !n.End.Less(ip)
}

// Net parses the subnet's figures; the same checks guard what is read back,
// so a hand-edited row cannot hand out a bad address.
func (b BootSubnet) Net() (BootNet, error) {
	return parseBootSubnet(b.CIDR, b.Gateway, strings.Split(b.DNSServers, ","), b.DynamicStart, b.DynamicEnd, b.LeaseSeconds)
}

// BootSubnetInput is what staff enter for a boot subnet.
type BootSubnetInput struct {
	Name         string
	CIDR         string // 10.213.0.0/24
	Gateway      string // optional
	DNSServers   []string
	DynamicStart string // both empty: no dynamic range (reservations only)
	DynamicEnd   string
	LeaseSeconds int64 // 0: one hour
}

// Lease bounds: short enough to notice a gone machine, long enough not to
// flood the database with renewals.
const (
	defaultLeaseSeconds = 3600
	minLeaseSeconds     = 60
	maxLeaseSeconds     = 7 * 24 * 3600
)

func parseBootSubnet(cidr, gateway string, dns []string, start, end string, leaseSeconds int64) (BootNet, error) {
	var n BootNet
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil || !p.Addr().Is4() {
		return n, E(ErrInvalid, "cidr", "give an IPv4 network in CIDR form, e.g. 10.213.0.0/24")
	}
	if p.Masked() != p {
		return n, E(ErrInvalid, "cidr", "the address is not the start of the network; did you mean "+p.Masked().String()+"?")
	}
	if p.Bits() > 30 {
		return n, E(ErrInvalid, "cidr", "the network must be /30 or larger")
	}
	n.Prefix = p
	usable := func(a netip.Addr) bool { return a != p.Addr() && a != broadcast(p) }
	if g := strings.TrimSpace(gateway); g != "" {
		if n.Gateway, err = netip.ParseAddr(g); err != nil || !n.Gateway.Is4() || !p.Contains(n.Gateway) || !usable(n.Gateway) {
			return n, E(ErrInvalid, "gateway", "the gateway must be a host address inside "+p.String())
		}
	}
	for _, d := range dns {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		a, err := netip.ParseAddr(d)
		if err != nil || !a.Is4() {
			return n, E(ErrInvalid, "dns_servers", d+" is not an IPv4 address")
		}
		if !slices.Contains(n.DNS, a) {
			n.DNS = append(n.DNS, a)
		}
	}
	start, end = strings.TrimSpace(start), strings.TrimSpace(end)
	if start != "" || end != "" {
		if n.Start, err = netip.ParseAddr(start); err != nil || !n.Start.Is4() || !p.Contains(n.Start) || !usable(n.Start) {
			return n, E(ErrInvalid, "dynamic_start", "the dynamic range must start at a host address inside "+p.String())
		}
		if n.End, err = netip.ParseAddr(end); err != nil || !n.End.Is4() || !p.Contains(n.End) || !usable(n.End) {
			return n, E(ErrInvalid, "dynamic_end", "the dynamic range must end at a host address inside "+p.String())
		}
		if n.End.Less(n.Start) {
			return n, E(ErrInvalid, "dynamic_end", "the dynamic range must not end before it starts")
		}
		if n.Gateway.IsValid() && n.InRange(n.Gateway) {
			return n, E(ErrInvalid, "dynamic_start", "the dynamic range cannot include the gateway "+n.Gateway.String())
		}
	}
	switch {
	case leaseSeconds == 0:
		leaseSeconds = defaultLeaseSeconds
	case leaseSeconds < minLeaseSeconds || leaseSeconds > maxLeaseSeconds:
		return n, E(ErrInvalid, "lease_seconds", fmt.Sprintf("the lease time must be between %d and %d seconds", minLeaseSeconds, maxLeaseSeconds))
	}
	n.LeaseTime = time.Duration(leaseSeconds) * time.Second
	return n, nil
}

// CreateBootSubnet adds a network the boot stack serves. Boot subnets may
// not overlap: DHCP picks the subnet by the address a request came in on.
func (s *Store) CreateBootSubnet(ctx context.Context, a Actor, in BootSubnetInput) (BootSubnet, error) {
	var sn BootSubnet
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	t := &Target{Type: "boot_subnet", Name: in.Name}
	err := s.change(ctx, a, "boot_subnet.create", t, func(tx *gorm.DB) error {
		if !catalogName.MatchString(in.Name) {
			return E(ErrInvalid, "name", "use 1–63 lower-case letters, digits, dots, dashes or underscores")
		}
		n, err := parseBootSubnet(in.CIDR, in.Gateway, in.DNSServers, in.DynamicStart, in.DynamicEnd, in.LeaseSeconds)
		if err != nil {
			return err
		}
		var existing []BootSubnet
		if err := tx.Find(&existing).Error; err != nil {
			return fmt.Errorf("load boot subnets: %w", err)
		}
		for _, e := range existing {
			if p, err := netip.ParsePrefix(e.CIDR); err == nil && p.Overlaps(n.Prefix) {
				return E(ErrConflict, "cidr", fmt.Sprintf("%s overlaps boot subnet %s (%s)", n.Prefix, e.Name, e.CIDR))
			}
		}
		dns := make([]string, len(n.DNS))
		for i, d := range n.DNS {
			dns[i] = d.String()
		}
		ts := now()
		sn = BootSubnet{ID: newID(), Name: in.Name, CIDR: n.Prefix.String(), Gateway: addrText(n.Gateway),
			DNSServers: strings.Join(dns, ","), DynamicStart: addrText(n.Start), DynamicEnd: addrText(n.End),
			LeaseSeconds: int64(n.LeaseTime / time.Second), CreatedAt: ts, UpdatedAt: ts}
		if err := tx.Create(&sn).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "a boot subnet called "+in.Name+" already exists")
			}
			return fmt.Errorf("create boot subnet: %w", err)
		}
		t.ID = sn.ID
		return nil
	})
	return sn, err
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// ListBootSubnets returns every boot subnet, oldest first.
func (s *Store) ListBootSubnets(ctx context.Context) ([]BootSubnet, error) {
	var out []BootSubnet
	if err := s.db.WithContext(ctx).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list boot subnets: %w", err)
	}
	return out, nil
}

// GetBootSubnet returns one boot subnet by id or name.
func (s *Store) GetBootSubnet(ctx context.Context, idOrName string) (BootSubnet, error) {
	var sn BootSubnet
	if err := s.db.WithContext(ctx).Where("id = ? OR name = ?", idOrName, idOrName).Take(&sn).Error; err != nil {
		if errIsNotFound(err) {
			return sn, notFound("boot subnet")
		}
		return sn, fmt.Errorf("load boot subnet: %w", err)
	}
	return sn, nil
}

// loadBootSubnet reads one boot subnet by id.
func loadBootSubnet(db *gorm.DB, id string) (BootSubnet, error) {
	var sn BootSubnet
	if err := db.Where("id = ?", id).Take(&sn).Error; err != nil {
		if errIsNotFound(err) {
			return sn, notFound("boot subnet")
		}
		return sn, fmt.Errorf("load boot subnet: %w", err)
	}
	return sn, nil
}

// loadBootNet reads one boot subnet by id with its parsed network.
func loadBootNet(db *gorm.DB, id string) (BootSubnet, BootNet, error) {
	sn, err := loadBootSubnet(db, id)
	if err != nil {
		return sn, BootNet{}, err
	}
	n, err := sn.Net()
	if err != nil {
		return sn, BootNet{}, fmt.Errorf("boot subnet %s: %w", sn.Name, err)
	}
	return sn, n, nil
}

// DeleteBootSubnet removes a boot subnet with its reservations and leases.
func (s *Store) DeleteBootSubnet(ctx context.Context, a Actor, id string) error {
	t := &Target{Type: "boot_subnet", ID: id}
	return s.change(ctx, a, "boot_subnet.delete", t, func(tx *gorm.DB) error {
		sn, err := loadBootSubnet(tx, id)
		if err != nil {
			return err
		}
		t.Name = sn.Name
		// Explicit deletes: the cascade needs foreign keys on in SQLite.
		for _, m := range []any{&dhcpLease{}, &Reservation{}} {
			if err := tx.Where("subnet_id = ?", id).Delete(m).Error; err != nil {
				return fmt.Errorf("delete boot subnet: %w", err)
			}
		}
		if err := tx.Where("id = ?", id).Delete(&BootSubnet{}).Error; err != nil {
			return fmt.Errorf("delete boot subnet: %w", err)
		}
		return nil
	})
}

// Reservation is a fixed address for a known MAC.
type Reservation struct {
	MAC       string `gorm:"column:mac;primaryKey"`
	SubnetID  string
	IP        string `gorm:"column:ip"`
	Hostname  string
	CreatedAt time.Time
}

// TableName keeps the table name plain.
func (Reservation) TableName() string { return "dhcp_reservations" }

// NormalizeMAC returns a 48-bit MAC in the one form the database holds
// (lower case, colons), or a classified error.
func NormalizeMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil || len(hw) != 6 {
		return "", E(ErrInvalid, "mac", "give a MAC address like 52:54:00:12:34:56")
	}
	return hw.String(), nil
}

// hostnameOK accepts a DHCP host name: one DNS label.
func hostnameOK(h string) bool {
	if len(h) > 63 {
		return false
	}
	for i, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0 && i < len(h)-1:
		default:
			return false
		}
	}
	return true
}

// AddReservation fixes a MAC's address in a boot subnet. The address must be
// inside the subnet and outside its dynamic range, so a reservation never
// takes an address a lease may hold.
func (s *Store) AddReservation(ctx context.Context, a Actor, mac, subnetID, ip, hostname string) (Reservation, error) {
	var r Reservation
	t := &Target{Type: "dhcp_reservation", Name: mac}
	err := s.change(ctx, a, "dhcp_reservation.create", t, func(tx *gorm.DB) error {
		m, err := NormalizeMAC(mac)
		if err != nil {
			return err
		}
		t.Name = m
		hostname = strings.ToLower(strings.TrimSpace(hostname))
		if !hostnameOK(hostname) {
			return E(ErrInvalid, "hostname", "use up to 63 lower-case letters, digits or inner dashes")
		}
		sn, n, err := loadBootNet(tx, subnetID)
		if err != nil {
			return err
		}
		addr, err := netip.ParseAddr(strings.TrimSpace(ip))
		switch {
		case err != nil || !addr.Is4() || !n.Prefix.Contains(addr) || addr == n.Prefix.Addr() || addr == broadcast(n.Prefix):
			return E(ErrInvalid, "ip", "give a host address inside "+n.Prefix.String())
		case addr == n.Gateway:
			return E(ErrInvalid, "ip", "the address is the subnet's gateway")
		case n.InRange(addr):
			return E(ErrInvalid, "ip", fmt.Sprintf("the address is inside the dynamic range %s–%s", n.Start, n.End))
		}
		var other Reservation
		switch err := tx.Where("mac = ?", m).Take(&other).Error; {
		case err == nil:
			return E(ErrConflict, "mac", m+" already has a reservation ("+other.IP+")")
		case !errIsNotFound(err):
			return fmt.Errorf("load reservation: %w", err)
		}
		r = Reservation{MAC: m, SubnetID: sn.ID, IP: addr.String(), Hostname: hostname, CreatedAt: now()}
		t.ID = m
		if err := tx.Create(&r).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "ip", addr.String()+" is already reserved")
			}
			return fmt.Errorf("create reservation: %w", err)
		}
		return nil
	})
	return r, err
}

// ListReservations returns a boot subnet's reservations by address.
func (s *Store) ListReservations(ctx context.Context, subnetID string) ([]Reservation, error) {
	var out []Reservation
	if err := s.db.WithContext(ctx).Where("subnet_id = ?", subnetID).Order("ip").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	slices.SortFunc(out, func(a, b Reservation) int { return compareAddrText(a.IP, b.IP) })
	return out, nil
}

// DeleteReservation removes a MAC's reservation; its lease, if any, stays
// until it expires or the machine asks again.
func (s *Store) DeleteReservation(ctx context.Context, a Actor, mac string) error {
	m, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	t := &Target{Type: "dhcp_reservation", ID: m, Name: m}
	return s.change(ctx, a, "dhcp_reservation.delete", t, func(tx *gorm.DB) error {
		res := tx.Where("mac = ?", m).Delete(&Reservation{})
		if res.Error != nil {
			return fmt.Errorf("delete reservation: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("reservation")
		}
		return nil
	})
}

func compareAddrText(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}

// dhcpLease is a lease row.
type dhcpLease struct {
	SubnetID  string `gorm:"column:subnet_id;primaryKey"`
	IP        string `gorm:"column:ip;primaryKey"`
	IPInt     int64  `gorm:"column:ip_int"` // IP as a number, for the free-address search
	MAC       string `gorm:"column:mac"`
	Hostname  string
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (dhcpLease) TableName() string { return "dhcp_leases" }

// Lease is an address a MAC holds in a boot subnet until ExpiresAt.
type Lease struct {
	SubnetID  string
	IP        netip.Addr
	MAC       string
	Hostname  string // from the reservation, if any
	ExpiresAt time.Time
	CreatedAt time.Time
}

func (l dhcpLease) lease() Lease {
	ip, _ := netip.ParseAddr(l.IP)
	return Lease{SubnetID: l.SubnetID, IP: ip, MAC: l.MAC, Hostname: l.Hostname,
		ExpiresAt: l.ExpiresAt.UTC(), CreatedAt: l.CreatedAt.UTC()}
}

// ListLeases returns a boot subnet's leases, expired ones included, by address.
func (s *Store) ListLeases(ctx context.Context, subnetID string) ([]Lease, error) {
	var rows []dhcpLease
	if err := s.db.WithContext(ctx).Where("subnet_id = ?", subnetID).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	out := make([]Lease, len(rows))
	for i, r := range rows {
		out[i] = r.lease()
	}
	slices.SortFunc(out, func(a, b Lease) int { return a.IP.Compare(b.IP) })
	return out, nil
}

// declinedPrefix marks a lease row that holds an address a client reported
// in use by someone else (DHCPDECLINE): no MAC, so it is unique per address.
const declinedPrefix = "declined/"

// leaseAttempts bounds how often a lost race starts the choice over; each
// round already skips addresses taken concurrently.
const leaseAttempts = 8

// Lease gives mac an address in a boot subnet and records it until
// now + the subnet's lease time. It is idempotent per MAC: the MAC's
// reservation first, else the lease it already holds (renewed), else the
// requested address if it is in the dynamic range and free, else the lowest
// never-leased address of the dynamic range, else the longest-expired lease
// of another MAC. Concurrent calls never hand one address to two MACs: the
// table's keys refuse the second, and the loser moves on.
func (s *Store) Lease(ctx context.Context, subnetID, mac string, requested netip.Addr, at time.Time) (Lease, error) {
	return s.LeaseFrom(ctx, subnetID, mac, requested, netip.Addr{}, at)
}

// LeaseFrom is Lease for a caller that remembers where its previous new
// lease went: a MAC without a lease gets the lowest never-leased address at
// or after from, wrapping around to the start of the range (next fit, like
// Kea's iterative allocator), so the taken part of the range is not walked
// again on every allocation. from is only a hint; an invalid one, or one
// outside the range, means the start of the range.
func (s *Store) LeaseFrom(ctx context.Context, subnetID, mac string, requested, from netip.Addr, at time.Time) (Lease, error) {
	m, err := NormalizeMAC(mac)
	if err != nil {
		return Lease{}, err
	}
	db := s.db.WithContext(ctx)
	at = at.UTC().Truncate(time.Microsecond)
	for range leaseAttempts {
		l, ok, err := s.tryLease(db, subnetID, m, requested.Unmap(), from.Unmap(), at)
		switch {
		case err != nil && !isDuplicate(err):
			return Lease{}, err
		case ok:
			return l, nil
		}
	}
	return Lease{}, fmt.Errorf("lease in boot subnet %s: gave up after %d lost races", subnetID, leaseAttempts)
}

// leaseState is what one request needs to know, read in one round trip: the
// subnet, the MAC's reservation in it and the lease it holds there.
const leaseStateSQL = `SELECT s.id, s.name, s.cidr, s.gateway, s.dns_servers, s.dynamic_start, s.dynamic_end, s.lease_seconds,
	r.ip, r.hostname, l.ip, l.hostname, l.expires_at, l.created_at
	FROM boot_subnets s
	LEFT JOIN dhcp_reservations r ON r.mac = ? AND r.subnet_id = s.id
	LEFT JOIN dhcp_leases l ON l.subnet_id = s.id AND l.mac = ?
	WHERE s.id = ?`

// gapSQL finds the lowest address in (lo, hi] that no lease row holds,
// given that lo is held: the first held address of [lo, hi) whose successor
// is not. With the (subnet_id, ip_int) index both dialects walk the index in
// order and stop at the first gap.
const gapSQL = `SELECT l.ip_int + 1 FROM dhcp_leases l
	WHERE l.subnet_id = ? AND l.ip_int >= ? AND l.ip_int < ?
	AND NOT EXISTS (SELECT 1 FROM dhcp_leases x WHERE x.subnet_id = l.subnet_id AND x.ip_int = l.ip_int + 1)
	ORDER BY l.ip_int LIMIT 1`

func ipInt(a netip.Addr) int64 {
	b := a.As4()
	return int64(b[0])<<24 | int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3])
}

func intIP(v int64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// tryLease makes one pass; ok false (or a duplicate-key error) means a
// concurrent change won a race and the caller starts over.
func (s *Store) tryLease(db *gorm.DB, subnetID, mac string, requested, from netip.Addr, at time.Time) (Lease, bool, error) {
	var (
		sn                               BootSubnet
		resIP, resHost, heldIP, heldHost sql.NullString
		heldExp, heldCreated             sql.NullTime
	)
	err := db.Raw(leaseStateSQL, mac, mac, subnetID).Row().Scan(&sn.ID, &sn.Name, &sn.CIDR, &sn.Gateway, &sn.DNSServers,
		&sn.DynamicStart, &sn.DynamicEnd, &sn.LeaseSeconds, &resIP, &resHost, &heldIP, &heldHost, &heldExp, &heldCreated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Lease{}, false, notFound("boot subnet")
	case err != nil:
		return Lease{}, false, fmt.Errorf("load lease state: %w", err)
	}
	n, err := sn.Net()
	if err != nil {
		return Lease{}, false, fmt.Errorf("boot subnet %s: %w", sn.Name, err)
	}
	expires := at.Add(n.LeaseTime)
	if resIP.Valid {
		return s.leaseReserved(db, sn, Reservation{MAC: mac, SubnetID: sn.ID, IP: resIP.String, Hostname: resHost.String}, expires, at)
	}

	if heldIP.Valid {
		held := dhcpLease{SubnetID: sn.ID, IP: heldIP.String, MAC: mac, Hostname: heldHost.String,
			ExpiresAt: heldExp.Time, CreatedAt: heldCreated.Time}
		ip, perr := netip.ParseAddr(held.IP)
		if perr == nil && n.InRange(ip) {
			r := db.Model(&dhcpLease{}).Where("subnet_id = ? AND ip = ? AND mac = ?", sn.ID, held.IP, mac).
				Updates(map[string]any{"expires_at": expires, "updated_at": at})
			if r.Error != nil {
				return Lease{}, false, fmt.Errorf("renew lease: %w", r.Error)
			}
			held.ExpiresAt, held.UpdatedAt = expires, at
			return held.lease(), r.RowsAffected == 1, nil
		}
		// Staff moved the range, or the reservation went: start afresh.
		if err := db.Where("subnet_id = ? AND ip = ? AND mac = ?", sn.ID, held.IP, mac).Delete(&dhcpLease{}).Error; err != nil {
			return Lease{}, false, fmt.Errorf("drop stale lease: %w", err)
		}
	}

	if !n.Start.IsValid() {
		return Lease{}, false, E(ErrNoCapacity, "", "boot subnet "+sn.Name+" has no free address")
	}
	// insert takes an address no row holds. Conflicts on the address are
	// routine (DO NOTHING, RowsAffected 0); one on the MAC means a
	// concurrent call for this MAC won, and its error starts the caller over.
	insert := func(ip netip.Addr) (Lease, bool, error) {
		row := dhcpLease{SubnetID: sn.ID, IP: ip.String(), IPInt: ipInt(ip), MAC: mac, ExpiresAt: expires, CreatedAt: at, UpdatedAt: at}
		r := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "subnet_id"}, {Name: "ip"}}, DoNothing: true}).Create(&row)
		if r.Error != nil {
			return Lease{}, false, fmt.Errorf("hold address %s: %w", ip, r.Error)
		}
		return row.lease(), r.RowsAffected == 1, nil
	}
	// steal takes an address whose lease has run out.
	steal := func(ip netip.Addr) (Lease, bool, error) {
		r := db.Model(&dhcpLease{}).Where("subnet_id = ? AND ip = ? AND expires_at < ?", sn.ID, ip.String(), at).
			Updates(map[string]any{"mac": mac, "hostname": "", "expires_at": expires, "created_at": at, "updated_at": at})
		if r.Error != nil {
			return Lease{}, false, fmt.Errorf("hold address %s: %w", ip, r.Error)
		}
		row := dhcpLease{SubnetID: sn.ID, IP: ip.String(), MAC: mac, ExpiresAt: expires, CreatedAt: at, UpdatedAt: at}
		return row.lease(), r.RowsAffected == 1, nil
	}
	// The wanted address; losing it to a race is no reason to start over.
	if requested.IsValid() && n.InRange(requested) {
		if l, ok, err := insert(requested); err != nil || ok {
			return l, ok, err
		}
		if l, ok, err := steal(requested); err != nil || ok {
			return l, ok, err
		}
	}
	// The lowest never-leased address from the hint to the end, then from
	// the start up to the hint.
	lo, hi := ipInt(n.Start), ipInt(n.End)
	first := lo
	if from.IsValid() && n.InRange(from) {
		first = ipInt(from)
	}
	spans := [][2]int64{{first, hi}}
	if first > lo {
		spans = append(spans, [2]int64{lo, first - 1})
	}
	for _, sp := range spans {
		cand := sp[0]
		for {
			l, ok, err := insert(intIP(cand))
			if err != nil || ok {
				return l, ok, err
			}
			var next sql.NullInt64
			if err := db.Raw(gapSQL, sn.ID, cand, sp[1]).Row().Scan(&next); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return Lease{}, false, fmt.Errorf("find a free address: %w", err)
			}
			if !next.Valid || next.Int64 > sp[1] {
				break
			}
			cand = next.Int64
		}
	}
	// The range is used up: reuse the lease that ran out first.
	for range leaseAttempts {
		var ip string
		err := db.Model(&dhcpLease{}).Select("ip").
			Where("subnet_id = ? AND ip_int BETWEEN ? AND ? AND expires_at < ?", sn.ID, lo, hi, at).
			Order("expires_at, ip_int").Limit(1).Row().Scan(&ip)
		if errors.Is(err, sql.ErrNoRows) {
			return Lease{}, false, E(ErrNoCapacity, "", "boot subnet "+sn.Name+" has no free address")
		}
		if err != nil {
			return Lease{}, false, fmt.Errorf("find an expired lease: %w", err)
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return Lease{}, false, fmt.Errorf("lease row holds %q: %w", ip, err)
		}
		if l, ok, err := steal(addr); err != nil || ok {
			return l, ok, err
		}
	}
	return Lease{}, false, nil // they were all taken meanwhile: look again
}

func (s *Store) leaseReserved(db *gorm.DB, sn BootSubnet, res Reservation, expires, at time.Time) (Lease, bool, error) {
	ip, err := netip.ParseAddr(res.IP)
	if err != nil || !ip.Is4() {
		return Lease{}, false, fmt.Errorf("reservation of %s holds %q", res.MAC, res.IP)
	}
	row := dhcpLease{SubnetID: sn.ID, IP: res.IP, IPInt: ipInt(ip), MAC: res.MAC, Hostname: res.Hostname, ExpiresAt: expires, CreatedAt: at, UpdatedAt: at}
	err = db.Transaction(func(tx *gorm.DB) error {
		// The MAC's dynamic lease, and any stale holder of the reserved address, give way.
		if err := tx.Where("subnet_id = ? AND ((mac = ? AND ip <> ?) OR (ip = ? AND mac <> ?))", sn.ID, res.MAC, res.IP, res.IP, res.MAC).
			Delete(&dhcpLease{}).Error; err != nil {
			return fmt.Errorf("drop superseded lease: %w", err)
		}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "subnet_id"}, {Name: "ip"}},
			DoUpdates: clause.Assignments(map[string]any{"hostname": res.Hostname, "expires_at": expires, "updated_at": at}),
		}).Create(&row).Error
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease reserved address: %w", err)
	}
	return row.lease(), true, nil
}

// Release ends mac's lease in a boot subnet; releasing twice is harmless.
func (s *Store) Release(ctx context.Context, subnetID, mac string) error {
	m, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	if err := s.db.WithContext(ctx).Where("subnet_id = ? AND mac = ?", subnetID, m).Delete(&dhcpLease{}).Error; err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// Decline records that a client found ip in use by someone else: the
// address is held, by no MAC, for one lease time, and mac loses its lease so
// its next request gets another address.
func (s *Store) Decline(ctx context.Context, subnetID, mac string, ip netip.Addr, at time.Time) error {
	m, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	db := s.db.WithContext(ctx)
	sn, n, err := loadBootNet(db, subnetID)
	if err != nil {
		return err
	}
	if !n.InRange(ip) {
		return E(ErrInvalid, "ip", ip.String()+" is not in the dynamic range of "+sn.Name)
	}
	at = at.UTC().Truncate(time.Microsecond)
	r := db.Model(&dhcpLease{}).Where("subnet_id = ? AND ip = ? AND mac = ?", sn.ID, ip.String(), m).
		Updates(map[string]any{"mac": declinedPrefix + ip.String(), "hostname": "", "expires_at": at.Add(n.LeaseTime), "updated_at": at})
	if r.Error != nil {
		return fmt.Errorf("decline address: %w", r.Error)
	}
	if r.RowsAffected == 0 {
		return notFound("lease")
	}
	return nil
}

// RecordDiscovered notes a MAC that PXE-booted on a managed subnet: added on
// first sight (first_seen kept after), last seen and what it said updated on
// every later one. MACs of enlisted machines are not recorded.
func (s *Store) RecordDiscovered(ctx context.Context, mac, subnetID, vendorClass string, arch int, userClass string) error {
	m, err := NormalizeMAC(mac)
	if err != nil {
		return err
	}
	ts := now()
	vendorClass, userClass = clean(vendorClass), clean(userClass)
	// WHERE on the SELECT also resolves SQLite's INSERT … SELECT … ON CONFLICT parse ambiguity.
	err = s.db.WithContext(ctx).Exec(`INSERT INTO discovered_macs (mac, subnet_id, vendor_class, arch, user_class, first_seen, last_seen)
		SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM machine_macs WHERE mac = ?)
		ON CONFLICT (mac) DO UPDATE SET subnet_id = excluded.subnet_id, vendor_class = excluded.vendor_class,
			arch = excluded.arch, user_class = excluded.user_class, last_seen = excluded.last_seen`,
		m, subnetID, vendorClass, arch, userClass, ts, ts, m).Error
	if err != nil {
		return fmt.Errorf("record discovered mac: %w", err)
	}
	return nil
}

// BootInfo is what the boot stack needs to know about an enlisted machine.
type BootInfo struct {
	MachineID string
	Name      string
	State     string
	// Erase: a release quick-wipes the disks.
	Erase bool
}

// MachineBoot finds the enlisted machine a MAC belongs to; ok is false for
// an unknown MAC.
func (s *Store) MachineBoot(ctx context.Context, mac string) (BootInfo, bool, error) {
	m, err := NormalizeMAC(mac)
	if err != nil {
		return BootInfo{}, false, err
	}
	var b BootInfo
	row := s.db.WithContext(ctx).Raw(`SELECT m.id, m.name, m.state, m.release_erase FROM machine_macs mm
		JOIN machines m ON m.id = mm.machine_id WHERE mm.mac = ?`, m).Row()
	if err := row.Scan(&b.MachineID, &b.Name, &b.State, &b.Erase); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return BootInfo{}, false, nil
		}
		return BootInfo{}, false, fmt.Errorf("look up machine by mac: %w", err)
	}
	return b, true, nil
}
