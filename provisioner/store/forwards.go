package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// PortForward sends TCP connections on a public port of the ISP's address
// to a port of one of the tenant's VMs.
type PortForward struct {
	ID         string
	TenantID   string
	VMID       string `gorm:"column:vm_id"`
	VMName     string `gorm:"->"` // filled by lists, never written
	PublicPort int
	TargetPort int
	Protocol   string
	CreatedBy  string
	CreatedAt  time.Time
}

// TableName keeps the table name plain.
func (PortForward) TableName() string { return "port_forwards" }

// PortForwardInput is what a tenant asks for.
type PortForwardInput struct {
	VMID       string
	PublicPort int // 0 picks the lowest free port in the staff range
	TargetPort int
}

// Exposure says what of a VM the forwarder publishes by name.
type Exposure struct {
	HTTP          bool // port 80, routed by Host header
	HTTPS         bool // port 443, routed by TLS SNI, passed through
	ProxyProtocol bool // prefix HTTPS connections with a PROXY v2 header
}

type forwardRoutesRow struct {
	ID        int
	Version   int64
	VMMark    string `gorm:"column:vm_mark"`
	UpdatedAt time.Time
}

func (forwardRoutesRow) TableName() string { return "forward_routes" }

// ProtocolTCP is the only forward protocol so far.
const ProtocolTCP = "tcp"

func bumpForwardRoutes(tx *gorm.DB) error {
	res := tx.Model(&forwardRoutesRow{}).Where("id = 1").
		Updates(map[string]any{"version": gorm.Expr("version + 1"), "updated_at": now()})
	if res.Error != nil {
		return fmt.Errorf("bump forward routes: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("bump forward routes: version row missing")
	}
	return nil
}

// tenantVM loads a live VM of the tenant; another tenant's VM is not found.
func tenantVM(tx *gorm.DB, tenantID, vmID, field string) (VM, error) {
	var vm VM
	err := tx.Where("id = ? AND tenant_id = ? AND deleted_at IS NULL", vmID, tenantID).Take(&vm).Error
	if errIsNotFound(err) {
		return VM{}, E(ErrNotFound, field, "vm not found")
	}
	if err != nil {
		return VM{}, fmt.Errorf("load vm: %w", err)
	}
	return vm, nil
}

// GetVMExposure tells what of the tenant's VM is published.
func (s *Store) GetVMExposure(ctx context.Context, tenantID, vmID string) (Exposure, error) {
	var e Exposure
	db := s.db.WithContext(ctx)
	if _, err := tenantVM(db, tenantID, vmID, ""); err != nil {
		return e, err
	}
	row := db.Table("vms").Where("id = ?", vmID).Select("expose_http, expose_https, proxy_protocol").Row()
	if err := row.Scan(&e.HTTP, &e.HTTPS, &e.ProxyProtocol); err != nil {
		return e, fmt.Errorf("load vm exposure: %w", err)
	}
	return e, nil
}

// SetVMExposure changes what of the tenant's VM is published; nil leaves a
// setting as it is. It returns the settings now in force.
func (s *Store) SetVMExposure(ctx context.Context, a Actor, tenantID, vmID string, http, https, proxyProtocol *bool) (Exposure, error) {
	var out Exposure
	target := &Target{Type: "vm", ID: vmID, TenantID: tenantID}
	err := s.change(ctx, a, "vm.exposure.update", target, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		vm, err := tenantVM(tx, tenantID, vmID, "")
		if err != nil {
			return err
		}
		target.Name = vm.Name
		if err := ensureActive(ten); err != nil {
			return err
		}
		upd := map[string]any{}
		for col, v := range map[string]*bool{"expose_http": http, "expose_https": https, "proxy_protocol": proxyProtocol} {
			if v != nil {
				upd[col] = *v
			}
		}
		if len(upd) > 0 {
			if err := tx.Table("vms").Where("id = ?", vmID).Updates(upd).Error; err != nil {
				return fmt.Errorf("update vm exposure: %w", err)
			}
			if err := bumpForwardRoutes(tx); err != nil {
				return err
			}
		}
		row := tx.Table("vms").Where("id = ?", vmID).Select("expose_http, expose_https, proxy_protocol").Row()
		if err := row.Scan(&out.HTTP, &out.HTTPS, &out.ProxyProtocol); err != nil {
			return fmt.Errorf("load vm exposure: %w", err)
		}
		return nil
	})
	return out, err
}

// validPortRange checks the staff-defined range of public ports.
func validPortRange(portMin, portMax int) error {
	if portMin < 1 || portMax > 65535 || portMin > portMax {
		return fmt.Errorf("port forward range %d–%d is not a range of TCP ports", portMin, portMax)
	}
	return nil
}

// countPortForwards counts the forwards a tenant holds on VMs that still exist.
func countPortForwards(tx *gorm.DB, tenantID string, n *int64) error {
	err := tx.Model(&PortForward{}).
		// Correlated, so each forward looks up its one VM: SQLite builds an
		// uncorrelated IN list from every VM of the region first.
		Where("tenant_id = ? AND EXISTS (SELECT 1 FROM vms WHERE vms.id = port_forwards.vm_id AND vms.deleted_at IS NULL)", tenantID).Count(n).Error
	if err != nil {
		return fmt.Errorf("count port forwards: %w", err)
	}
	return nil
}

// CreatePortForward forwards a public port in [portMin, portMax] (the staff
// range) to a port of the tenant's VM, within the tenant's quota. Concurrent
// requests of one tenant are serialised on the tenant row; two tenants
// asking for one port are told apart by the table's unique key.
func (s *Store) CreatePortForward(ctx context.Context, a Actor, tenantID string, in PortForwardInput, portMin, portMax int) (PortForward, error) {
	var pf PortForward
	if err := validPortRange(portMin, portMax); err != nil {
		return pf, err
	}
	target := &Target{Type: "port_forward", Name: strconv.Itoa(in.PublicPort), TenantID: tenantID}
	err := s.change(ctx, a, "forward.create", target, func(tx *gorm.DB) error {
		switch {
		case in.TargetPort < 1 || in.TargetPort > 65535:
			return E(ErrInvalid, "target_port", "the VM port must be between 1 and 65535")
		case in.PublicPort != 0 && (in.PublicPort < portMin || in.PublicPort > portMax):
			return E(ErrInvalid, "public_port", fmt.Sprintf("the public port must be between %d and %d", portMin, portMax))
		case strings.TrimSpace(in.VMID) == "":
			return E(ErrInvalid, "vm_id", "choose a VM")
		}
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		if err := ensureActive(ten); err != nil {
			return err
		}
		vm, err := tenantVM(tx, tenantID, in.VMID, "vm_id")
		if err != nil {
			return err
		}
		if vm.State == VMDeleting || vm.DesiredState == VMDeleted {
			return E(ErrInvalidTransition, "vm_id", vm.Name+" is being deleted")
		}
		// Forwards of VMs that are gone free their ports; the rows stay
		// until here because deletion is a soft delete.
		if err := tx.Where("vm_id IN (SELECT id FROM vms WHERE deleted_at IS NOT NULL)").Delete(&PortForward{}).Error; err != nil {
			return fmt.Errorf("drop forwards of deleted vms: %w", err)
		}
		var n int64
		if err := countPortForwards(tx, tenantID, &n); err != nil {
			return err
		}
		if n >= ten.QuotaPortForwards {
			return E(ErrQuota, "", fmt.Sprintf("your quota allows %d port forwards and all are in use", ten.QuotaPortForwards))
		}
		if err := s.checkCredit(tx, tenantID, ItemPortForward); err != nil {
			return err
		}
		pf = PortForward{TenantID: tenantID, VMID: vm.ID, TargetPort: in.TargetPort, Protocol: ProtocolTCP, CreatedBy: a.Email}
		if in.PublicPort != 0 {
			pf.PublicPort = in.PublicPort
			if err := insertForward(tx, &pf); err != nil {
				return err
			}
		} else if err := insertLowestFree(tx, &pf, portMin, portMax); err != nil {
			return err
		}
		pf.VMName = vm.Name
		target.ID, target.Name = pf.ID, fmt.Sprintf("%d → %s:%d", pf.PublicPort, vm.Name, pf.TargetPort)
		if err := meter(tx, s.now(), UsageRecord{TenantID: tenantID, ResourceKind: ResourcePortForward, ResourceID: pf.ID,
			ResourceName: fmt.Sprintf("port %d → %s:%d", pf.PublicPort, vm.Name, pf.TargetPort), Item: ItemPortForward}, UsageActive); err != nil {
			return err
		}
		return bumpForwardRoutes(tx)
	})
	return pf, err
}

func errPortTaken(port int) error {
	return E(ErrConflict, "public_port", fmt.Sprintf("public port %d is already forwarded", port))
}

// insertForward creates the row inside a savepoint, so a duplicate port
// leaves the outer transaction usable on PostgreSQL.
func insertForward(tx *gorm.DB, pf *PortForward) error {
	pf.ID, pf.CreatedAt = newID(), now()
	err := tx.Transaction(func(sp *gorm.DB) error { return sp.Create(pf).Error })
	if isDuplicate(err) {
		return errPortTaken(pf.PublicPort)
	}
	if err != nil {
		return fmt.Errorf("create port forward: %w", err)
	}
	return nil
}

// insertLowestFree takes the lowest port of the range nobody forwards; a
// port taken by a concurrent transaction moves it on to the next one.
func insertLowestFree(tx *gorm.DB, pf *PortForward, portMin, portMax int) error {
	var used []int
	if err := tx.Model(&PortForward{}).Where("public_port BETWEEN ? AND ?", portMin, portMax).
		Order("public_port").Pluck("public_port", &used).Error; err != nil {
		return fmt.Errorf("load forwarded ports: %w", err)
	}
	taken := make(map[int]bool, len(used))
	for _, p := range used {
		taken[p] = true
	}
	for p := portMin; p <= portMax; p++ {
		if taken[p] {
			continue
		}
		pf.PublicPort = p
		err := insertForward(tx, pf)
		if e, ok := AsError(err); ok && e.Kind == ErrConflict {
			continue
		}
		return err
	}
	return E(ErrConflict, "public_port", fmt.Sprintf("every public port from %d to %d is forwarded already", portMin, portMax))
}

// ListPortForwards lists the tenant's forwards by public port, with the total.
func (s *Store) ListPortForwards(ctx context.Context, tenantID string, p Page) ([]PortForward, int, error) {
	q := s.db.WithContext(ctx).Table("port_forwards").
		Joins("JOIN vms ON vms.id = port_forwards.vm_id").
		Where("port_forwards.tenant_id = ? AND vms.deleted_at IS NULL", tenantID)
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count port forwards: %w", err)
	}
	var out []PortForward
	if err := p.apply(q.Select("port_forwards.*, vms.name AS vm_name").Order("port_forwards.public_port")).
		Scan(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list port forwards: %w", err)
	}
	return out, int(total), nil
}

// DeletePortForward removes one of the tenant's forwards; another tenant's
// forward is not found.
func (s *Store) DeletePortForward(ctx context.Context, a Actor, tenantID, id string) error {
	target := &Target{Type: "port_forward", ID: id, TenantID: tenantID}
	return s.change(ctx, a, "forward.delete", target, func(tx *gorm.DB) error {
		var pf PortForward
		if err := tx.Where("id = ? AND tenant_id = ?", id, tenantID).Take(&pf).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("port forward")
			}
			return fmt.Errorf("load port forward: %w", err)
		}
		target.Name = strconv.Itoa(pf.PublicPort)
		res := tx.Where("id = ? AND tenant_id = ?", id, tenantID).Delete(&PortForward{})
		if res.Error != nil {
			return fmt.Errorf("delete port forward: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return notFound("port forward")
		}
		if err := meter(tx, s.now(), UsageRecord{ResourceKind: ResourcePortForward, ResourceID: id}, ""); err != nil {
			return err
		}
		return bumpForwardRoutes(tx)
	})
}

// TLSTarget is where the forwarder passes a TLS connection. (Target is the
// audit log's word already.)
type TLSTarget struct {
	Addr          netip.AddrPort
	ProxyProtocol bool // send a PROXY v2 header first
}

// Routes is the forwarder's routing table under one version. Names are
// lower-case FQDNs <vm>.<tenant-slug>.<zone> without the final dot; only
// running VMs with an address appear.
type Routes struct {
	Version int64
	HTTP    map[string]netip.AddrPort // → VM:80, VMs that expose HTTP
	TLS     map[string]TLSTarget      // → VM:443, VMs that expose HTTPS
	TCP     map[int]netip.AddrPort    // public port → VM:target port
	// Cut holds the addresses of VMs whose tenant is suspended: they
	// have no routes, and connections already open to them end now.
	Cut map[netip.Addr]bool
}

// vmMark fingerprints the VM rows cheaply: changes the lifecycle makes
// (state, address, deletion) all move updated_at or the count.
func vmMark(db *gorm.DB) (string, error) {
	var n int64
	var newest sql.NullString
	if err := db.Table("vms").Select("COUNT(*), MAX(updated_at)").Row().Scan(&n, &newest); err != nil {
		return "", fmt.Errorf("fingerprint vms: %w", err)
	}
	return strconv.FormatInt(n, 10) + "/" + newest.String, nil
}

// ForwardRoutesVersion is the routing table's version, cheap enough to poll
// every second. Forward and exposure changes bump it when they commit; VM
// changes made elsewhere are noticed here, and bump it once.
func (s *Store) ForwardRoutesVersion(ctx context.Context) (int64, error) {
	db := s.db.WithContext(ctx)
	for range 5 {
		var row forwardRoutesRow
		if err := db.Where("id = 1").Take(&row).Error; err != nil {
			return 0, fmt.Errorf("load forward routes version: %w", err)
		}
		mark, err := vmMark(db)
		if err != nil {
			return 0, err
		}
		if mark == row.VMMark {
			return row.Version, nil
		}
		// Guarded: of several forwarders noticing one change, one bumps.
		res := db.Model(&forwardRoutesRow{}).Where("id = 1 AND version = ? AND vm_mark = ?", row.Version, row.VMMark).
			Updates(map[string]any{"version": row.Version + 1, "vm_mark": mark, "updated_at": now()})
		if res.Error != nil {
			return 0, fmt.Errorf("bump forward routes: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return row.Version + 1, nil
		}
	}
	return 0, E(ErrConflict, "", "forward routes keep changing; try again")
}

// ForwardRoutes reads the whole routing table for the region zone. The
// version is read first: a change committed meanwhile shows as a newer
// version at the next poll, so nothing is missed.
func (s *Store) ForwardRoutes(ctx context.Context, zone string) (Routes, error) {
	zone = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(zone)), ".")
	if zone == "" {
		return Routes{}, fmt.Errorf("forward routes: zone is empty")
	}
	v, err := s.ForwardRoutesVersion(ctx)
	if err != nil {
		return Routes{}, err
	}
	r := Routes{Version: v, HTTP: map[string]netip.AddrPort{}, TLS: map[string]TLSTarget{}, TCP: map[int]netip.AddrPort{}, Cut: map[netip.Addr]bool{}}
	db := s.db.WithContext(ctx)
	var vms []struct {
		Slug, Name    string
		IP            string `gorm:"column:ip"`
		ExposeHTTP    bool   `gorm:"column:expose_http"`
		ExposeHTTPS   bool   `gorm:"column:expose_https"`
		ProxyProtocol bool   `gorm:"column:proxy_protocol"`
	}
	if err := db.Table("vms").
		Select("tenants.slug AS slug, vms.name AS name, vms.ip AS ip, vms.expose_http AS expose_http, vms.expose_https AS expose_https, vms.proxy_protocol AS proxy_protocol").
		Joins("JOIN tenants ON tenants.id = vms.tenant_id").
		Where("vms.deleted_at IS NULL AND vms.state = ? AND vms.ip <> '' AND (vms.expose_http OR vms.expose_https) AND tenants.status = ?", VMRunning, TenantActive).
		Scan(&vms).Error; err != nil {
		return Routes{}, fmt.Errorf("load published vms: %w", err)
	}
	for _, vm := range vms {
		ip, err := netip.ParseAddr(vm.IP)
		if err != nil {
			s.log.WarnContext(ctx, "skipping vm with an invalid address in forward routes", "vm", vm.Name, "tenant", vm.Slug, "ip", vm.IP)
			continue
		}
		name := strings.ToLower(vm.Name + "." + vm.Slug + "." + zone)
		if vm.ExposeHTTP {
			r.HTTP[name] = netip.AddrPortFrom(ip, 80)
		}
		if vm.ExposeHTTPS {
			r.TLS[name] = TLSTarget{Addr: netip.AddrPortFrom(ip, 443), ProxyProtocol: vm.ProxyProtocol}
		}
	}
	var fwds []struct {
		PublicPort, TargetPort int
		IP                     string `gorm:"column:ip"`
	}
	if err := db.Table("port_forwards").
		Select("port_forwards.public_port AS public_port, port_forwards.target_port AS target_port, vms.ip AS ip").
		Joins("JOIN vms ON vms.id = port_forwards.vm_id").
		Joins("JOIN tenants ON tenants.id = vms.tenant_id").
		Where("vms.deleted_at IS NULL AND vms.state = ? AND vms.ip <> '' AND port_forwards.protocol = ? AND tenants.status = ?", VMRunning, ProtocolTCP, TenantActive).
		Scan(&fwds).Error; err != nil {
		return Routes{}, fmt.Errorf("load port forwards: %w", err)
	}
	for _, f := range fwds {
		ip, err := netip.ParseAddr(f.IP)
		if err != nil {
			continue
		}
		r.TCP[f.PublicPort] = netip.AddrPortFrom(ip, uint16(f.TargetPort))
	}
	var cut []string
	if err := db.Table("vms").Joins("JOIN tenants ON tenants.id = vms.tenant_id").
		Where("vms.deleted_at IS NULL AND vms.ip <> '' AND tenants.status <> ?", TenantActive).
		Pluck("vms.ip", &cut).Error; err != nil {
		return Routes{}, fmt.Errorf("load suspended vms: %w", err)
	}
	for _, a := range cut {
		if ip, err := netip.ParseAddr(a); err == nil {
			r.Cut[ip] = true
		}
	}
	return r, nil
}
