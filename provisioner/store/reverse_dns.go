package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"gorm.io/gorm"
)

// ReverseDNS is the PTR name of a VM's address.
type ReverseDNS struct {
	VMID   string
	VMName string
	// Address is invalid while the VM has none; there is nothing to name then.
	Address netip.Addr
	// Name is the chosen PTR name relative to the tenant's subzone ("@" for
	// the subzone itself), or "" for the default: the VM's own name.
	Name string
}

// Custom reports whether the customer chose the name.
func (r ReverseDNS) Custom() bool { return r.Name != "" }

// ReverseDNSInput is what a customer asks for: a full name in the region
// zone, or "" to go back to the VM's own name.
type ReverseDNSInput struct {
	Name string // e.g. mail.acme.cloud.internal, the final dot optional
	// Zone is the region zone VM names live in, e.g. cloud.internal: the
	// store holds names relative to it.
	Zone string
}

// GetReverseDNS returns the PTR name of one of the tenant's VMs; another
// tenant's VM is not found.
func (s *Store) GetReverseDNS(ctx context.Context, tenantID, vmID string) (ReverseDNS, error) {
	db := s.db.WithContext(ctx)
	vm, err := tenantVM(db, tenantID, vmID, "")
	if err != nil {
		return ReverseDNS{}, err
	}
	return vmReverseDNS(db, vm)
}

func vmReverseDNS(db *gorm.DB, vm VM) (ReverseDNS, error) {
	out := ReverseDNS{VMID: vm.ID, VMName: vm.Name}
	var held []ipAddress
	if err := db.Where("vm_id = ?", vm.ID).Limit(1).Find(&held).Error; err != nil {
		return out, fmt.Errorf("load vm address: %w", err)
	}
	if len(held) == 0 {
		return out, nil
	}
	ip, err := netip.ParseAddr(held[0].Address)
	if err != nil {
		return out, fmt.Errorf("stored address %q: %w", held[0].Address, err)
	}
	out.Address, out.Name = ip, held[0].PTRName
	return out, nil
}

// SetReverseDNS sets the PTR name of the VM's address, or with an empty
// name returns it to the VM's own name. The name must lie in the tenant's
// subzone and resolve to that very address in our DNS: be the VM's own
// name or carry one of the tenant's A records (AAAA for an IPv6 address)
// for it, as forward-confirmed reverse DNS checks expect.
func (s *Store) SetReverseDNS(ctx context.Context, a Actor, tenantID, vmID string, in ReverseDNSInput) (ReverseDNS, error) {
	var out ReverseDNS
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(in.Name)), ".")
	action := "dns.ptr.set"
	if name == "" {
		action = "dns.ptr.clear"
	}
	target := &Target{Type: "vm", ID: vmID, Name: name, TenantID: tenantID}
	err := s.change(ctx, a, action, target, func(tx *gorm.DB) error {
		// The tenant lock orders this with record changes, so the record
		// a name resolves through cannot go while it is checked.
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		vm, err := tenantVM(tx, tenantID, vmID, "")
		if err != nil {
			return err
		}
		if err := ensureActive(ten); err != nil {
			return err
		}
		subzone := ten.Slug + "." + strings.Trim(strings.ToLower(in.Zone), ".")
		rel := ""
		if name != "" {
			if rel, err = ptrRelative(name, subzone); err != nil {
				return err
			}
		}
		if vm.State == VMDeleting || vm.DesiredState == VMDeleted {
			return E(ErrInvalidTransition, "ptr", vm.Name+" is being deleted")
		}
		out, err = vmReverseDNS(tx, vm)
		if err != nil {
			return err
		}
		if !out.Address.IsValid() {
			return E(ErrInvalidTransition, "ptr", vm.Name+" has no address yet; set its reverse name once it has one")
		}
		if name != "" {
			if err := checkForward(tx, vm, out.Address, rel, name); err != nil {
				return err
			}
			if rel == vm.Name {
				rel = "" // the default spelled out
			}
		}
		target.Name = out.Address.String() + " PTR " + ptrFQDN(rel, vm.Name, subzone)
		if rel == out.Name {
			return nil // nothing changes, so the zone keeps its serial
		}
		res := tx.Model(&ipAddress{}).Where("vm_id = ? AND address = ?", vm.ID, out.Address.String()).Update("ptr_name", rel)
		if res.Error != nil {
			return fmt.Errorf("set ptr name: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return E(ErrConflict, "ptr", vm.Name+"'s address changed meanwhile; try again")
		}
		out.Name = rel
		return bumpDNSSerial(tx)
	})
	return out, err
}

// ptrFQDN is the full name a PTR answers with, without the final dot.
func ptrFQDN(rel, vmName, subzone string) string {
	switch rel {
	case "":
		return vmName + "." + subzone
	case "@":
		return subzone
	}
	return rel + "." + subzone
}

// ptrRelative checks a lower-case full name (no final dot) and returns it
// relative to subzone.
func ptrRelative(name, subzone string) (string, error) {
	if len(name) > 253 {
		return "", E(ErrInvalid, "ptr", fmt.Sprintf("the name has %d characters; a DNS name has at most 253", len(name)))
	}
	if !validDNSName(name, false) {
		return "", E(ErrInvalid, "ptr", "the name must be a host name: labels of letters a–z, digits and dashes (at most 63 characters each, not starting or ending with a dash) separated by dots")
	}
	switch {
	case name == subzone:
		return "@", nil
	case strings.HasSuffix(name, "."+subzone):
		return strings.TrimSuffix(name, "."+subzone), nil
	case !strings.Contains(name, "."):
		return "", E(ErrInvalid, "ptr", "give the full name, e.g. "+name+"."+subzone)
	}
	return "", E(ErrInvalid, "ptr", name+" is not in your zone "+subzone+
		": the reverse name must be a name our DNS resolves to the VM's address, such as the VM's own name or a name you give an A record on the DNS page")
}

// checkForward refuses rel (relative to the VM's tenant subzone, spelled
// fqdn in messages) unless it resolves to ip in our DNS: the VM's own name,
// or a name with one of the tenant's address records for ip.
func checkForward(tx *gorm.DB, vm VM, ip netip.Addr, rel, fqdn string) error {
	if rel == vm.Name {
		return nil
	}
	typ := DNSTypeA
	if ip.Is6() && !ip.Is4In6() {
		typ = DNSTypeAAAA
	}
	var recs []DNSRecord
	if err := tx.Where("tenant_id = ? AND name = ?", vm.TenantID, rel).Order("type, value").Find(&recs).Error; err != nil {
		return fmt.Errorf("load dns records: %w", err)
	}
	var others []string
	cname := false
	for _, r := range recs {
		switch {
		case r.Type == typ && r.Value == ip.String():
			return nil
		case r.Type == typ:
			others = append(others, r.Value)
		case r.Type == DNSTypeCNAME:
			cname = true
		}
	}
	var vms []VM
	if err := tx.Where("tenant_id = ? AND name = ? AND deleted_at IS NULL", vm.TenantID, rel).Limit(1).Find(&vms).Error; err != nil {
		return fmt.Errorf("load vm: %w", err)
	}
	if len(vms) == 1 && vms[0].IP != "" {
		others = append(others, vms[0].IP)
	}
	hint := "; add an " + typ + " record " + rel + " → " + ip.String() + " on the DNS page first"
	switch {
	case cname:
		return E(ErrInvalid, "ptr", fqdn+" is a CNAME; a reverse name needs its own "+typ+" record for "+ip.String()+
			", since mail servers and other checks look it up without following aliases")
	case len(others) > 0:
		return E(ErrInvalid, "ptr", fqdn+" resolves to "+strings.Join(others, ", ")+", not to "+vm.Name+"'s address "+ip.String()+hint)
	}
	return E(ErrInvalid, "ptr", fqdn+" does not resolve to "+ip.String()+" in our DNS"+hint)
}

// clearStrandedPTRs returns to the default the PTR names that resolved
// only through rec, an address record being deleted, and audits each.
func clearStrandedPTRs(tx *gorm.DB, a Actor, rec DNSRecord) (int, error) {
	var rows []struct {
		VMID, VMName, Address string
	}
	if err := tx.Table("ip_addresses").Select("ip_addresses.vm_id AS vm_id, vms.name AS vm_name, ip_addresses.address AS address").
		Joins("JOIN vms ON vms.id = ip_addresses.vm_id").
		Where("vms.tenant_id = ? AND ip_addresses.ptr_name = ? AND ip_addresses.address = ? AND vms.name <> ?", rec.TenantID, rec.Name, rec.Value, rec.Name).
		Scan(&rows).Error; err != nil {
		return 0, fmt.Errorf("find ptr names: %w", err)
	}
	for _, r := range rows {
		if err := tx.Model(&ipAddress{}).Where("vm_id = ? AND address = ?", r.VMID, r.Address).Update("ptr_name", "").Error; err != nil {
			return 0, fmt.Errorf("clear ptr name: %w", err)
		}
		t := &Target{Type: "vm", ID: r.VMID, Name: r.VMName, TenantID: rec.TenantID}
		detail := "the reverse name of " + r.Address + " is the VM's own name again: the " + rec.Type + " record " + rec.Name + " it resolved through was deleted"
		if err := tx.Create(auditEntry(a, "dns.ptr.clear", t, ResultSuccess, detail)).Error; err != nil {
			return 0, fmt.Errorf("record audit entry: %w", err)
		}
	}
	return len(rows), nil
}
