package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Subnet is a network VMs take addresses from.
type Subnet struct {
	ID         string
	Name       string
	CIDR       string `gorm:"column:cidr"`
	Gateway    string
	DNSServers string `gorm:"column:dns_servers"` // comma-separated
	RangeStart string
	RangeEnd   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName keeps the table name plain.
func (Subnet) TableName() string { return "subnets" }

// SubnetSummary is a subnet with how much of its range is handed out.
type SubnetSummary struct {
	Subnet
	Size int64 // addresses in the range
	Used int64
	Free int64
}

// ipAddress is one address held by a VM.
type ipAddress struct {
	SubnetID string `gorm:"column:subnet_id;primaryKey"`
	Address  string `gorm:"column:address;primaryKey"`
	VMID     string `gorm:"column:vm_id"`
	// PTRName is the address's reverse name chosen by the customer,
	// relative to the tenant's subzone; "" is the VM's own name.
	PTRName   string `gorm:"column:ptr_name"`
	CreatedAt time.Time
}

func (ipAddress) TableName() string { return "ip_addresses" }

// SubnetInput is what staff enter for a subnet.
type SubnetInput struct {
	Name       string
	CIDR       string // 192.0.2.0/24
	Gateway    string // optional
	DNSServers []string
	RangeStart string
	RangeEnd   string
}

// Address is a VM's network configuration.
type Address struct {
	SubnetID string
	IP       netip.Addr
	Prefix   netip.Prefix // the subnet, e.g. 192.0.2.0/24
	Gateway  netip.Addr   // invalid when the subnet has none
	DNS      []netip.Addr
}

// Interface is the address with the subnet's prefix length, e.g. 192.0.2.10/24.
func (a Address) Interface() netip.Prefix { return netip.PrefixFrom(a.IP, a.Prefix.Bits()) }

type subnetRange struct {
	prefix     netip.Prefix
	gateway    netip.Addr
	dns        []netip.Addr
	start, end netip.Addr
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// parseSubnet checks a subnet's figures; the same checks guard what is
// read back, so a hand-edited row cannot hand out a bad address.
func parseSubnet(cidr, gateway string, dns []string, start, end string) (subnetRange, error) {
	var r subnetRange
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil || !p.Addr().Is4() {
		return r, E(ErrInvalid, "cidr", "give an IPv4 network in CIDR form, e.g. 192.0.2.0/24")
	}
	if p.Masked() != p {
		return r, E(ErrInvalid, "cidr", "the address is not the start of the network; did you mean "+p.Masked().String()+"?")
	}
	if p.Bits() > 30 {
		return r, E(ErrInvalid, "cidr", "the network must be /30 or larger")
	}
	r.prefix = p
	if g := strings.TrimSpace(gateway); g != "" {
		if r.gateway, err = netip.ParseAddr(g); err != nil || !r.gateway.Is4() || !p.Contains(r.gateway) {
			return r, E(ErrInvalid, "gateway", "the gateway must be an IPv4 address inside "+p.String())
		}
		if r.gateway == p.Addr() || r.gateway == broadcast(p) {
			return r, E(ErrInvalid, "gateway", "the gateway cannot be the network or broadcast address")
		}
	}
	for _, d := range dns {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		a, err := netip.ParseAddr(d)
		if err != nil || !a.Is4() {
			return r, E(ErrInvalid, "dns_servers", d+" is not an IPv4 address")
		}
		if !slices.Contains(r.dns, a) {
			r.dns = append(r.dns, a)
		}
	}
	if r.start, err = netip.ParseAddr(strings.TrimSpace(start)); err != nil || !r.start.Is4() || !p.Contains(r.start) {
		return r, E(ErrInvalid, "range_start", "the range must start at an IPv4 address inside "+p.String())
	}
	if r.end, err = netip.ParseAddr(strings.TrimSpace(end)); err != nil || !r.end.Is4() || !p.Contains(r.end) {
		return r, E(ErrInvalid, "range_end", "the range must end at an IPv4 address inside "+p.String())
	}
	switch {
	case r.end.Less(r.start):
		return r, E(ErrInvalid, "range_end", "the range must not end before it starts")
	case r.start == p.Addr():
		return r, E(ErrInvalid, "range_start", "the range cannot include the network address "+p.Addr().String())
	case r.end == broadcast(p):
		return r, E(ErrInvalid, "range_end", "the range cannot include the broadcast address "+broadcast(p).String())
	case r.gateway.IsValid() && !r.gateway.Less(r.start) && !r.end.Less(r.gateway):
		return r, E(ErrInvalid, "range_start", "the range cannot include the gateway "+r.gateway.String())
	}
	return r, nil
}

func (r subnetRange) size() int64 { return int64(v4(r.end)-v4(r.start)) + 1 }

func (sn Subnet) parse() (subnetRange, error) {
	return parseSubnet(sn.CIDR, sn.Gateway, strings.Split(sn.DNSServers, ","), sn.RangeStart, sn.RangeEnd)
}

// CreateSubnet adds a network VMs take addresses from. Subnets may not overlap.
func (s *Store) CreateSubnet(ctx context.Context, a Actor, in SubnetInput) (Subnet, error) {
	var sn Subnet
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	t := &Target{Type: "subnet", Name: in.Name}
	err := s.change(ctx, a, "subnet.create", t, func(tx *gorm.DB) error {
		if !catalogName.MatchString(in.Name) {
			return E(ErrInvalid, "name", "use 1–63 lower-case letters, digits, dots, dashes or underscores")
		}
		r, err := parseSubnet(in.CIDR, in.Gateway, in.DNSServers, in.RangeStart, in.RangeEnd)
		if err != nil {
			return err
		}
		var existing []Subnet
		if err := tx.Find(&existing).Error; err != nil {
			return fmt.Errorf("load subnets: %w", err)
		}
		for _, e := range existing {
			if p, err := netip.ParsePrefix(e.CIDR); err == nil && p.Overlaps(r.prefix) {
				return E(ErrConflict, "cidr", fmt.Sprintf("%s overlaps subnet %s (%s)", r.prefix, e.Name, e.CIDR))
			}
		}
		dns := make([]string, len(r.dns))
		for i, d := range r.dns {
			dns[i] = d.String()
		}
		gw := ""
		if r.gateway.IsValid() {
			gw = r.gateway.String()
		}
		ts := now()
		sn = Subnet{ID: newID(), Name: in.Name, CIDR: r.prefix.String(), Gateway: gw, DNSServers: strings.Join(dns, ","),
			RangeStart: r.start.String(), RangeEnd: r.end.String(), CreatedAt: ts, UpdatedAt: ts}
		if err := tx.Create(&sn).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "name", "a subnet called "+in.Name+" already exists")
			}
			return fmt.Errorf("create subnet: %w", err)
		}
		t.ID = sn.ID
		return nil
	})
	return sn, err
}

// ListSubnets returns the subnets in the order addresses are taken from
// them (oldest first), with how many addresses are used.
func (s *Store) ListSubnets(ctx context.Context) ([]SubnetSummary, error) {
	db := s.db.WithContext(ctx)
	var subnets []Subnet
	if err := db.Order("created_at, id").Find(&subnets).Error; err != nil {
		return nil, fmt.Errorf("list subnets: %w", err)
	}
	rows, err := db.Model(&ipAddress{}).Select("subnet_id, COUNT(*)").Group("subnet_id").Rows()
	if err != nil {
		return nil, fmt.Errorf("count addresses: %w", err)
	}
	defer rows.Close()
	used := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count addresses: %w", err)
		}
		used[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count addresses: %w", err)
	}
	out := make([]SubnetSummary, len(subnets))
	for i, sn := range subnets {
		out[i] = SubnetSummary{Subnet: sn, Used: used[sn.ID]}
		if r, err := sn.parse(); err == nil {
			out[i].Size = r.size()
			out[i].Free = max(out[i].Size-out[i].Used, 0)
		}
	}
	return out, nil
}

// DeleteSubnet removes a subnet no VM holds an address in.
func (s *Store) DeleteSubnet(ctx context.Context, a Actor, id string) error {
	t := &Target{Type: "subnet", ID: id}
	return s.change(ctx, a, "subnet.delete", t, func(tx *gorm.DB) error {
		var sn Subnet
		if err := tx.Where("id = ?", id).Take(&sn).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("subnet")
			}
			return fmt.Errorf("load subnet: %w", err)
		}
		t.Name = sn.Name
		var n int64
		if err := tx.Model(&ipAddress{}).Where("subnet_id = ?", id).Count(&n).Error; err != nil {
			return fmt.Errorf("count addresses: %w", err)
		}
		if n > 0 {
			return E(ErrConflict, "", fmt.Sprintf("%d %s in %s still in use", n, plural(n, "address is", "addresses are"), sn.Name))
		}
		if err := tx.Where("id = ?", id).Delete(&Subnet{}).Error; err != nil {
			if errors.Is(err, gorm.ErrForeignKeyViolated) {
				return E(ErrConflict, "", "addresses in "+sn.Name+" are still in use")
			}
			return fmt.Errorf("delete subnet: %w", err)
		}
		return nil
	})
}

func (s *Store) vmAddress(db *gorm.DB, vmID string) (Address, bool, error) {
	var held ipAddress
	if err := db.Where("vm_id = ?", vmID).Take(&held).Error; err != nil {
		if errIsNotFound(err) {
			return Address{}, false, nil
		}
		return Address{}, false, fmt.Errorf("load vm address: %w", err)
	}
	var sn Subnet
	if err := db.Where("id = ?", held.SubnetID).Take(&sn).Error; err != nil {
		return Address{}, false, fmt.Errorf("load subnet: %w", err)
	}
	r, err := sn.parse()
	if err != nil {
		return Address{}, false, fmt.Errorf("subnet %s: %w", sn.Name, err)
	}
	ip, err := netip.ParseAddr(held.Address)
	if err != nil {
		return Address{}, false, fmt.Errorf("stored address %q: %w", held.Address, err)
	}
	return Address{SubnetID: sn.ID, IP: ip, Prefix: r.prefix, Gateway: r.gateway, DNS: r.dns}, true, nil
}

// AllocateIP gives a VM an address: the one it already holds, else the
// lowest free address in the range of the first subnet with room. Two VMs
// can never hold one address: the table's primary key refuses the second,
// and the loser moves on to the next address.
func (s *Store) AllocateIP(ctx context.Context, vmID string) (Address, error) {
	db := s.db.WithContext(ctx)
	if a, ok, err := s.vmAddress(db, vmID); err != nil || ok {
		return a, err
	}
	var vm VM
	if err := db.Where("id = ? AND deleted_at IS NULL", vmID).Take(&vm).Error; err != nil {
		if errIsNotFound(err) {
			return Address{}, notFound("vm")
		}
		return Address{}, fmt.Errorf("load vm: %w", err)
	}
	var subnets []Subnet
	if err := db.Order("created_at, id").Find(&subnets).Error; err != nil {
		return Address{}, fmt.Errorf("load subnets: %w", err)
	}
	if len(subnets) == 0 {
		return Address{}, E(ErrNoCapacity, "", "no subnets are defined; staff must add one")
	}
	for _, sn := range subnets {
		r, err := sn.parse()
		if err != nil {
			s.log.WarnContext(ctx, "skipping invalid subnet", "subnet", sn.Name, "err", err)
			continue
		}
		var held []string
		if err := db.Model(&ipAddress{}).Where("subnet_id = ?", sn.ID).Pluck("address", &held).Error; err != nil {
			return Address{}, fmt.Errorf("load held addresses: %w", err)
		}
		taken := make(map[netip.Addr]bool, len(held))
		for _, h := range held {
			if a, err := netip.ParseAddr(h); err == nil {
				taken[a] = true
			}
		}
		for ip := r.start; !r.end.Less(ip); ip = ip.Next() {
			if taken[ip] || ip == r.gateway {
				continue
			}
			err := db.Transaction(func(tx *gorm.DB) error {
				row := ipAddress{SubnetID: sn.ID, Address: ip.String(), VMID: vmID, CreatedAt: now()}
				if err := tx.Create(&row).Error; err != nil {
					return err
				}
				return tx.Model(&VM{}).Where("id = ?", vmID).Update("ip", ip.String()).Error
			})
			switch {
			case err == nil:
				return Address{SubnetID: sn.ID, IP: ip, Prefix: r.prefix, Gateway: r.gateway, DNS: r.dns}, nil
			case isDuplicate(err):
				// Another VM took this address, or another call gave this
				// VM one already.
				if a, ok, err := s.vmAddress(db, vmID); err != nil || ok {
					return a, err
				}
				taken[ip] = true
			case errors.Is(err, gorm.ErrForeignKeyViolated):
				return Address{}, notFound("vm")
			default:
				return Address{}, fmt.Errorf("hold address %s: %w", ip, err)
			}
		}
	}
	if len(subnets) == 1 {
		return Address{}, E(ErrNoCapacity, "", "subnet "+subnets[0].Name+" is full")
	}
	names := make([]string, len(subnets))
	for i, sn := range subnets {
		names[i] = sn.Name
	}
	return Address{}, E(ErrNoCapacity, "", "subnets "+strings.Join(names, ", ")+" are full")
}

// ReleaseIP returns a VM's address to its subnet; releasing twice is harmless.
func (s *Store) ReleaseIP(ctx context.Context, vmID string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var held ipAddress
		if err := tx.Where("vm_id = ?", vmID).Take(&held).Error; err != nil {
			if errIsNotFound(err) {
				return nil
			}
			return fmt.Errorf("load vm address: %w", err)
		}
		if err := tx.Where("vm_id = ?", vmID).Delete(&ipAddress{}).Error; err != nil {
			return fmt.Errorf("release address: %w", err)
		}
		if err := tx.Model(&VM{}).Where("id = ? AND ip = ?", vmID, held.Address).Update("ip", "").Error; err != nil {
			return fmt.Errorf("clear vm address: %w", err)
		}
		return nil
	})
}
