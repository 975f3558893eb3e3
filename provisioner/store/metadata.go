package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
)

// Metadata is what the cloud-init metadata service tells one VM about itself.
type Metadata struct {
	VMID       string
	Name       string
	TenantSlug string
	State      string
	MAC        string
	UserData   string
	// SSHKeys are the public_key lines of the keys chosen for the VM that
	// still exist in the tenant.
	SSHKeys []string
	// Address is nil until the provisioner has allocated one.
	Address *VMAddress
	// RescueGeneration counts the console password resets; 0: none, and
	// RescuePasswordHash (SHA-512 crypt) is empty.
	RescueGeneration   int
	RescuePasswordHash string
}

// VMAddress is a VM's allocated address with the facts of its subnet.
type VMAddress struct {
	Addr    netip.Addr
	Prefix  netip.Prefix // Addr with the subnet's prefix length, e.g. 10.0.0.5/24
	Gateway netip.Addr   // zero when the subnet has none
	DNS     []netip.Addr
}

// metadataTokenBytes gives 256 bits: the token is the only credential a
// guest presents, so it must not be guessable.
const metadataTokenBytes = 32

func newMetadataToken() (string, error) {
	b := make([]byte, metadataTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate metadata token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// EnsureMetadataToken returns the VM's metadata token, creating it the first
// time. Concurrent callers all get the same token: only the UPDATE that finds
// the column still empty writes it.
func (s *Store) EnsureMetadataToken(ctx context.Context, vmID string) (string, error) {
	tok, err := newMetadataToken()
	if err != nil {
		return "", err
	}
	db := s.db.WithContext(ctx)
	if err := db.Model(&VM{}).Where("id = ? AND metadata_token = '' AND deleted_at IS NULL", vmID).
		Updates(map[string]any{"metadata_token": tok, "updated_at": now()}).Error; err != nil {
		return "", fmt.Errorf("set metadata token: %w", err)
	}
	var vm VM
	if err := db.Select("id", "metadata_token").Where("id = ? AND deleted_at IS NULL", vmID).Take(&vm).Error; err != nil {
		if errIsNotFound(err) {
			return "", notFound("vm")
		}
		return "", fmt.Errorf("read metadata token: %w", err)
	}
	if vm.MetadataToken == "" {
		return "", fmt.Errorf("metadata token of vm %s was not stored", vmID)
	}
	return vm.MetadataToken, nil
}

// MetadataByToken returns the metadata of the VM holding token. An unknown
// token and a VM that is deleted or being deleted are both not found.
func (s *Store) MetadataByToken(ctx context.Context, token string) (Metadata, error) {
	if token == "" {
		// Every VM without a token has '' in the column.
		return Metadata{}, notFound("vm")
	}
	db := s.db.WithContext(ctx)
	var row struct {
		ID, Name, State, MAC, UserData, TenantID, TenantSlug string
		RescueGeneration                                     int
		RescuePasswordHash                                   string
	}
	err := db.Table("vms").
		Joins("JOIN tenants ON tenants.id = vms.tenant_id").
		Select("vms.id, vms.name, vms.state, vms.mac, vms.user_data, vms.tenant_id, tenants.slug AS tenant_slug, vms.rescue_generation, vms.rescue_password_hash").
		Where("vms.metadata_token = ? AND vms.deleted_at IS NULL AND vms.state NOT IN ?", token, []string{VMDeleting, VMDeleted}).
		Take(&row).Error
	if err != nil {
		if errIsNotFound(err) {
			return Metadata{}, notFound("vm")
		}
		return Metadata{}, fmt.Errorf("look up metadata token: %w", err)
	}
	m := Metadata{VMID: row.ID, Name: row.Name, TenantSlug: row.TenantSlug, State: row.State, MAC: row.MAC, UserData: row.UserData,
		RescueGeneration: row.RescueGeneration, RescuePasswordHash: row.RescuePasswordHash}

	// The tenant condition is belt and braces: a VM only ever links keys of
	// its own tenant, and a deleted key's link goes with it (ON DELETE CASCADE).
	err = db.Table("vm_ssh_keys").
		Joins("JOIN ssh_keys ON ssh_keys.id = vm_ssh_keys.ssh_key_id").
		Where("vm_ssh_keys.vm_id = ? AND ssh_keys.tenant_id = ?", row.ID, row.TenantID).
		Order("ssh_keys.name, ssh_keys.id").
		Pluck("ssh_keys.public_key", &m.SSHKeys).Error
	if err != nil {
		return Metadata{}, fmt.Errorf("load vm keys: %w", err)
	}
	for i, k := range m.SSHKeys {
		m.SSHKeys[i] = strings.TrimSpace(k)
	}

	var addrs []struct {
		Address    string
		CIDR       string `gorm:"column:cidr"`
		Gateway    string
		DNSServers string `gorm:"column:dns_servers"`
	}
	err = db.Table("ip_addresses").
		Joins("JOIN subnets ON subnets.id = ip_addresses.subnet_id").
		Select("ip_addresses.address, subnets.cidr, subnets.gateway, subnets.dns_servers").
		Where("ip_addresses.vm_id = ?", row.ID).
		Limit(1).Scan(&addrs).Error
	if err != nil {
		return Metadata{}, fmt.Errorf("load vm address: %w", err)
	}
	if len(addrs) == 1 {
		a := addrs[0]
		m.Address, err = parseVMAddress(a.Address, a.CIDR, a.Gateway, a.DNSServers)
		if err != nil {
			return Metadata{}, fmt.Errorf("address of vm %s: %w", row.ID, err)
		}
	}
	return m, nil
}

func parseVMAddress(address, cidr, gateway, dns string) (*VMAddress, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(address))
	if err != nil {
		return nil, fmt.Errorf("parse address: %w", err)
	}
	subnet, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return nil, fmt.Errorf("parse subnet: %w", err)
	}
	if !subnet.Contains(addr) {
		return nil, fmt.Errorf("address %s is outside subnet %s", addr, subnet)
	}
	out := &VMAddress{Addr: addr, Prefix: netip.PrefixFrom(addr, subnet.Bits())}
	if gateway = strings.TrimSpace(gateway); gateway != "" {
		if out.Gateway, err = netip.ParseAddr(gateway); err != nil {
			return nil, fmt.Errorf("parse gateway: %w", err)
		}
	}
	for _, d := range strings.Split(dns, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("parse dns server: %w", err)
		}
		out.DNS = append(out.DNS, a)
	}
	return out, nil
}
