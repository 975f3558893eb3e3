package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// DNS record types tenants may create.
const (
	DNSTypeA     = "A"
	DNSTypeAAAA  = "AAAA"
	DNSTypeCNAME = "CNAME"
	DNSTypeTXT   = "TXT"
	DNSTypeMX    = "MX"
)

// Limits on tenant DNS records.
const (
	MaxDNSRecordsPerTenant = 50
	MinDNSTTL              = 60
	MaxDNSTTL              = 86400
	DefaultDNSTTL          = 3600
	maxTXTLength           = 255
)

// DNSRecord is an extra record in a tenant's subzone.
type DNSRecord struct {
	ID        string
	TenantID  string
	Name      string // relative to the tenant's subzone; "@" is the subzone itself
	Type      string
	Value     string // canonical: addresses as parsed, host names lower-case with a final dot
	TTL       int    `gorm:"column:ttl"`
	Priority  int    // MX only
	CreatedBy string
	CreatedAt time.Time
}

// TableName keeps the table name plain.
func (DNSRecord) TableName() string { return "dns_records" }

// DNSRecordInput is what a tenant asks for.
type DNSRecordInput struct {
	Name     string
	Type     string
	Value    string
	TTL      int // 0 means DefaultDNSTTL
	Priority int
}

type dnsZoneRow struct {
	ID          int
	Serial      int64
	ContentHash string
	UpdatedAt   time.Time
}

func (dnsZoneRow) TableName() string { return "dns_zone" }

var (
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dnsTXTLabel = regexp.MustCompile(`^_?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// validDNSName checks a host name made of RFC 1123 labels; service labels
// such as _acme-challenge are allowed when underscore is true.
func validDNSName(name string, underscore bool) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	re := dnsLabel
	if underscore {
		re = dnsTXTLabel
	}
	for l := range strings.SplitSeq(name, ".") {
		if len(l) > 63 || !re.MatchString(l) {
			return false
		}
	}
	return true
}

// normalize checks the input and returns the record to store, with a
// message that names what is wrong.
func (in DNSRecordInput) normalize(tenantSlug string) (DNSRecord, error) {
	r := DNSRecord{
		Name: strings.TrimSuffix(strings.ToLower(strings.TrimSpace(in.Name)), "."),
		Type: strings.ToUpper(strings.TrimSpace(in.Type)),
		TTL:  in.TTL, Priority: in.Priority,
	}
	if r.Name == "" {
		r.Name = "@"
	}
	if r.Name != "@" && !validDNSName(r.Name, r.Type == DNSTypeTXT) {
		return r, E(ErrInvalid, "name", "the name must be host name labels (letters a–z, digits, dashes; at most 63 characters each), or @ for "+tenantSlug+" itself")
	}
	// The full name is <name>.<slug>.<region zone>; keep room for the zone.
	if r.Name != "@" && len(r.Name)+1+len(tenantSlug) > 200 {
		return r, E(ErrInvalid, "name", "the name is too long")
	}
	if r.TTL == 0 {
		r.TTL = DefaultDNSTTL
	}
	if r.TTL < MinDNSTTL || r.TTL > MaxDNSTTL {
		return r, E(ErrInvalid, "ttl", fmt.Sprintf("the TTL must be between %d and %d seconds", MinDNSTTL, MaxDNSTTL))
	}
	if r.Type != DNSTypeMX && r.Priority != 0 {
		return r, E(ErrInvalid, "priority", "only MX records have a priority")
	}
	v := strings.TrimSpace(in.Value)
	switch r.Type {
	case DNSTypeA, DNSTypeAAAA:
		ip, err := netip.ParseAddr(v)
		if err != nil || ip.Zone() != "" || (r.Type == DNSTypeA) != ip.Is4() {
			family := "an IPv4"
			if r.Type == DNSTypeAAAA {
				family = "an IPv6"
			}
			return r, E(ErrInvalid, "value", "an "+r.Type+" record needs "+family+" address")
		}
		if why := UnroutableAddr(ip); why != "" {
			return r, E(ErrInvalid, "value", ip.String()+" is "+why+", which no one can reach through a public name; give the address of your server")
		}
		r.Value = ip.String()
	case DNSTypeCNAME, DNSTypeMX:
		h := strings.TrimSuffix(strings.ToLower(v), ".")
		if !validDNSName(h, false) || !strings.Contains(h, ".") {
			return r, E(ErrInvalid, "value", "the target must be a full host name such as mail.example.com")
		}
		r.Value = h + "."
		if r.Type == DNSTypeMX && (r.Priority < 0 || r.Priority > 65535) {
			return r, E(ErrInvalid, "priority", "the MX priority must be between 0 and 65535")
		}
	case DNSTypeTXT:
		if v == "" || len(in.Value) > maxTXTLength {
			return r, E(ErrInvalid, "value", fmt.Sprintf("a TXT value must have 1 to %d bytes", maxTXTLength))
		}
		for _, c := range in.Value {
			if c < 0x20 || c == 0x7f || c == 0xfffd {
				return r, E(ErrInvalid, "value", "a TXT value must be printable text")
			}
		}
		r.Value = in.Value
	default:
		return r, E(ErrInvalid, "type", "the type must be one of A, AAAA, CNAME, TXT, MX")
	}
	return r, nil
}

// bumpDNSSerial moves the zone serial forward inside tx: to the current
// Unix time or one past the old serial, whichever is larger, so a reset
// database still moves secondaries forward.
func bumpDNSSerial(tx *gorm.DB) error {
	ts := now()
	res := tx.Model(&dnsZoneRow{}).Where("id = 1").Updates(map[string]any{
		"serial":       gorm.Expr("CASE WHEN serial + 1 > ? THEN serial + 1 ELSE ? END", ts.Unix(), ts.Unix()),
		"content_hash": "",
		"updated_at":   ts,
	})
	if res.Error != nil {
		return fmt.Errorf("bump dns serial: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("bump dns serial: zone row missing")
	}
	return nil
}

// CreateDNSRecord adds a record to the tenant's subzone.
func (s *Store) CreateDNSRecord(ctx context.Context, a Actor, tenantID string, in DNSRecordInput) (DNSRecord, error) {
	var rec DNSRecord
	target := &Target{Type: "dns_record", Name: in.Name + " " + in.Type, TenantID: tenantID}
	err := s.change(ctx, a, "dns.record.create", target, func(tx *gorm.DB) error {
		t, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if err := ensureActive(t); err != nil {
			return err
		}
		rec, err = in.normalize(t.Slug)
		if err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&DNSRecord{}).Where("tenant_id = ?", tenantID).Count(&n).Error; err != nil {
			return fmt.Errorf("count dns records: %w", err)
		}
		if n >= MaxDNSRecordsPerTenant {
			return E(ErrQuota, "", fmt.Sprintf("you have %d DNS records, the most allowed; delete one first", n))
		}
		if err := checkCNAMEConflict(tx, tenantID, rec); err != nil {
			return err
		}
		rec.ID, rec.TenantID, rec.CreatedBy, rec.CreatedAt = newID(), tenantID, a.Email, now()
		if err := tx.Create(&rec).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "value", "this record exists already")
			}
			return fmt.Errorf("create dns record: %w", err)
		}
		target.ID, target.Name = rec.ID, rec.Name+" "+rec.Type
		return bumpDNSSerial(tx)
	})
	return rec, err
}

// checkCNAMEConflict refuses a CNAME beside any other data at its name (RFC
// 1034 §3.6.2), including a VM of the same name, and other data beside a CNAME.
func checkCNAMEConflict(tx *gorm.DB, tenantID string, rec DNSRecord) error {
	q := tx.Model(&DNSRecord{}).Where("tenant_id = ? AND name = ?", tenantID, rec.Name)
	if rec.Type != DNSTypeCNAME {
		q = q.Where("type = ?", DNSTypeCNAME)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return fmt.Errorf("check cname: %w", err)
	}
	if n > 0 && rec.Type == DNSTypeCNAME {
		return E(ErrConflict, "name", rec.Name+" has other records already; a CNAME must be the only record at its name")
	}
	if n > 0 {
		return E(ErrConflict, "name", rec.Name+" is a CNAME; it cannot have other records")
	}
	if rec.Type == DNSTypeCNAME {
		if err := tx.Model(&VM{}).Where("tenant_id = ? AND name = ? AND deleted_at IS NULL", tenantID, rec.Name).Count(&n).Error; err != nil {
			return fmt.Errorf("check cname: %w", err)
		}
		if n > 0 {
			return E(ErrConflict, "name", rec.Name+" is the name of your VM; a CNAME cannot share it")
		}
	}
	return nil
}

// ListDNSRecords lists the tenant's records, oldest first, with the total.
func (s *Store) ListDNSRecords(ctx context.Context, tenantID string, p Page) ([]DNSRecord, int, error) {
	q := s.db.WithContext(ctx).Model(&DNSRecord{}).Where("tenant_id = ?", tenantID)
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count dns records: %w", err)
	}
	var out []DNSRecord
	if err := p.apply(q.Order("name, type, value")).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list dns records: %w", err)
	}
	return out, int(total), nil
}

// DeleteDNSRecord removes one of the tenant's records; another tenant's
// record is not found.
func (s *Store) DeleteDNSRecord(ctx context.Context, a Actor, tenantID, id string) error {
	target := &Target{Type: "dns_record", ID: id, TenantID: tenantID}
	return s.change(ctx, a, "dns.record.delete", target, func(tx *gorm.DB) error {
		// Ordered with SetReverseDNS, which checks records under this lock.
		if _, err := lockTenant(tx, tenantID); err != nil {
			return err
		}
		var rec DNSRecord
		if err := tx.Where("id = ? AND tenant_id = ?", id, tenantID).Take(&rec).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("dns record")
			}
			return fmt.Errorf("load dns record: %w", err)
		}
		target.Name = rec.Name + " " + rec.Type
		res := tx.Where("id = ? AND tenant_id = ?", id, tenantID).Delete(&DNSRecord{})
		if res.Error != nil {
			return fmt.Errorf("delete dns record: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return notFound("dns record")
		}
		if rec.Type == DNSTypeA || rec.Type == DNSTypeAAAA {
			// A reverse name must keep resolving to its address.
			if _, err := clearStrandedPTRs(tx, a, rec); err != nil {
				return err
			}
		}
		return bumpDNSSerial(tx)
	})
}

// MachineSubzone is the label bare-metal machines are published under:
// <machine>.machines.<region zone>, for staff networks only.
const MachineSubzone = "machines"

// DNSHost is a VM's address under its tenant's subzone, or a machine's
// under MachineSubzone.
type DNSHost struct {
	TenantSlug string // MachineSubzone for machines
	Name       string
	IP         netip.Addr
	// Internal names are answered only to the LAN view (staff networks).
	Internal bool
	// PTR is the reverse name the customer chose for IP, relative to the
	// tenant's subzone ("@" for the subzone itself); "" is Name.
	PTR string
}

// DNSZoneRecord is a tenant record with the subzone it lives in.
type DNSZoneRecord struct {
	TenantSlug string
	DNSRecord
}

// DNSZone is everything the name server publishes, under one serial.
type DNSZone struct {
	Serial  uint32
	Hosts   []DNSHost
	Records []DNSZoneRecord
	Subnets []netip.Prefix // the LAN and boot subnets, for reverse zones
}

// DNSSnapshot reads the whole published content. When it differs from what
// the current serial was published with (a VM or machine got or lost an
// address, a lease expired), the serial is bumped first, so one serial never
// names two different contents.
func (s *Store) DNSSnapshot(ctx context.Context) (DNSZone, error) {
	db := s.db.WithContext(ctx)
	for range 5 {
		// The zone row is read before the content: a change committed in
		// between makes the guarded update below miss, and we read again.
		var row dnsZoneRow
		if err := db.Where("id = 1").Take(&row).Error; err != nil {
			return DNSZone{}, fmt.Errorf("load dns zone: %w", err)
		}
		z, err := s.dnsContent(db)
		if err != nil {
			return DNSZone{}, err
		}
		h := z.hash()
		if h == row.ContentHash {
			z.Serial = uint32(row.Serial)
			return z, nil
		}
		upd := map[string]any{"content_hash": h, "updated_at": now()}
		next := row.Serial
		if row.ContentHash != "" {
			// Content changed without a bump (VM addresses): bump now.
			next = max(row.Serial+1, now().Unix())
			upd["serial"] = next
		}
		res := db.Model(&dnsZoneRow{}).Where("id = 1 AND serial = ? AND content_hash = ?", row.Serial, row.ContentHash).Updates(upd)
		if res.Error != nil {
			return DNSZone{}, fmt.Errorf("publish dns serial: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			z.Serial = uint32(next)
			return z, nil
		}
	}
	return DNSZone{}, E(ErrConflict, "", "dns zone keeps changing; try again")
}

func (s *Store) dnsContent(db *gorm.DB) (DNSZone, error) {
	var z DNSZone
	var hosts []struct {
		Slug, Name, IP, PTR string
	}
	// A suspended tenant's names are withdrawn until it is unsuspended.
	if err := db.Table("vms").Select("tenants.slug AS slug, vms.name AS name, vms.ip AS ip, COALESCE(ip_addresses.ptr_name, '') AS ptr").
		Joins("JOIN tenants ON tenants.id = vms.tenant_id AND tenants.status = ?", TenantActive).
		Joins("LEFT JOIN ip_addresses ON ip_addresses.vm_id = vms.id AND ip_addresses.address = vms.ip").
		Where("vms.deleted_at IS NULL AND vms.ip <> ''").
		Order("tenants.slug, vms.name").Scan(&hosts).Error; err != nil {
		return z, fmt.Errorf("load vm addresses: %w", err)
	}
	for _, h := range hosts {
		ip, err := netip.ParseAddr(h.IP)
		if err != nil {
			s.log.Warn("skipping vm with an invalid address in dns", "vm", h.Name, "tenant", h.Slug, "ip", h.IP)
			continue
		}
		z.Hosts = append(z.Hosts, DNSHost{TenantSlug: h.Slug, Name: h.Name, IP: ip, PTR: h.PTR})
	}
	var recs []struct {
		Slug string
		DNSRecord
	}
	if err := db.Table("dns_records").Select("tenants.slug AS slug, dns_records.*").
		Joins("JOIN tenants ON tenants.id = dns_records.tenant_id AND tenants.status = ?", TenantActive).
		Order("tenants.slug, dns_records.name, dns_records.type, dns_records.value").Scan(&recs).Error; err != nil {
		return z, fmt.Errorf("load dns records: %w", err)
	}
	for _, r := range recs {
		z.Records = append(z.Records, DNSZoneRecord{TenantSlug: r.Slug, DNSRecord: r.DNSRecord})
	}
	machines, err := s.machineHosts(db)
	if err != nil {
		return z, err
	}
	z.Hosts = append(z.Hosts, machines...)
	var cidrs, bootCIDRs []string
	if err := db.Model(&Subnet{}).Order("cidr").Pluck("cidr", &cidrs).Error; err != nil {
		return z, fmt.Errorf("load subnets: %w", err)
	}
	// Boot subnets give the machines' reverse zones, seen only by the LAN.
	if err := db.Model(&BootSubnet{}).Order("cidr").Pluck("cidr", &bootCIDRs).Error; err != nil {
		return z, fmt.Errorf("load boot subnets: %w", err)
	}
	for _, c := range append(cidrs, bootCIDRs...) {
		if p, err := netip.ParsePrefix(c); err == nil && !slices.Contains(z.Subnets, p.Masked()) {
			z.Subnets = append(z.Subnets, p.Masked())
		}
	}
	return z, nil
}

// machineHosts gives each machine the address of its boot MAC: the DHCP
// reservation, else the newest unexpired lease. Machines without either
// are not published.
func (s *Store) machineHosts(db *gorm.DB) ([]DNSHost, error) {
	var rows []struct {
		Name, MAC, IP string
	}
	if err := db.Table("machines").Select("machines.name AS name, machine_macs.mac AS mac, COALESCE(dhcp_reservations.ip, '') AS ip").
		Joins("JOIN machine_macs ON machine_macs.machine_id = machines.id AND machine_macs.boot = ?", true).
		Joins("LEFT JOIN dhcp_reservations ON dhcp_reservations.mac = machine_macs.mac").
		Order("machines.name").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("load machine addresses: %w", err)
	}
	var leaseMACs []string
	for _, r := range rows {
		if r.IP == "" {
			leaseMACs = append(leaseMACs, r.MAC)
		}
	}
	leased := map[string]string{}
	if len(leaseMACs) > 0 {
		var leases []dhcpLease
		if err := db.Where("mac IN ? AND expires_at > ?", leaseMACs, now()).
			Order("updated_at DESC, expires_at DESC, ip").Find(&leases).Error; err != nil {
			return nil, fmt.Errorf("load machine leases: %w", err)
		}
		for _, l := range leases {
			if _, ok := leased[l.MAC]; !ok {
				leased[l.MAC] = l.IP
			}
		}
	}
	var out []DNSHost
	for _, r := range rows {
		ipText := r.IP
		if ipText == "" {
			ipText = leased[r.MAC]
		}
		if ipText == "" {
			continue
		}
		ip, err := netip.ParseAddr(ipText)
		if err != nil {
			s.log.Warn("skipping machine with an invalid address in dns", "machine", r.Name, "ip", ipText)
			continue
		}
		out = append(out, DNSHost{TenantSlug: MachineSubzone, Name: r.Name, IP: ip, Internal: true})
	}
	return out, nil
}

// hash fingerprints the published content (not the serial).
func (z DNSZone) hash() string {
	h := sha256.New()
	for _, x := range z.Hosts {
		kind := "H"
		if x.Internal {
			kind = "I" // VM lines keep their old form, so upgrades do not bump
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\n", kind, x.TenantSlug, x.Name, x.IP)
		if x.PTR != "" {
			// Only when set, so hosts without one keep their old lines.
			fmt.Fprintf(h, "P\x00%s\x00%s\x00%s\n", x.TenantSlug, x.Name, x.PTR)
		}
	}
	for _, r := range z.Records {
		fmt.Fprintf(h, "R\x00%s\x00%s\x00%s\x00%q\x00%d\x00%d\n", r.TenantSlug, r.Name, r.Type, r.Value, r.TTL, r.Priority)
	}
	for _, p := range z.Subnets {
		fmt.Fprintf(h, "S\x00%s\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// String renders a record as zone file text, for logs and pages.
func (r DNSRecord) String() string {
	v := r.Value
	switch r.Type {
	case DNSTypeTXT:
		v = strconv.Quote(v)
	case DNSTypeMX:
		v = strconv.Itoa(r.Priority) + " " + v
	}
	return fmt.Sprintf("%s %d IN %s %s", r.Name, r.TTL, r.Type, v)
}

// UnroutableAddr says why ip must never be published in a customer's
// record (loopback, link-local, unspecified, multicast, broadcast), or
// returns "". Such answers would point visitors' machines at themselves
// or their own network.
func UnroutableAddr(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsUnspecified(), ip.Is4() && ip.As4()[0] == 0:
		return "an unspecified address"
	case ip.IsMulticast():
		return "a multicast address"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	return ""
}
