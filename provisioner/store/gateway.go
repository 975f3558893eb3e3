package store

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// GatewayIdentity is who signed in to the SSH gateway: a tenant, through one
// of its keys.
type GatewayIdentity struct {
	TenantID   string
	TenantSlug string
	KeyID      string
	KeyName    string
}

// GatewayAuth finds the key with this SHA256 fingerprint among the keys of
// the tenant whose slug the gateway login user names. An unknown tenant and
// an unknown key are the same ErrNotFound, so the gateway's refusals tell a
// stranger nothing about which tenants exist. A suspended tenant is
// ErrSuspended, returned with the identity so the refusal can be audited
// against the tenant; the caller must only reveal it to a client that proved
// it holds the key.
func (s *Store) GatewayAuth(ctx context.Context, tenantSlug, fingerprint string) (GatewayIdentity, error) {
	tenantSlug = strings.ToLower(strings.TrimSpace(tenantSlug))
	if tenantSlug == "" || fingerprint == "" {
		return GatewayIdentity{}, notFound("tenant key")
	}
	var row struct {
		TenantID      string
		TenantSlug    string
		Status        string
		SuspendReason string
		KeyID         string
		KeyName       string
	}
	err := s.db.WithContext(ctx).Table("ssh_keys").
		Select("tenants.id AS tenant_id, tenants.slug AS tenant_slug, tenants.status AS status, "+
			"tenants.suspend_reason AS suspend_reason, ssh_keys.id AS key_id, ssh_keys.name AS key_name").
		Joins("JOIN tenants ON tenants.id = ssh_keys.tenant_id").
		Where("tenants.slug = ? AND ssh_keys.fingerprint = ?", tenantSlug, fingerprint).
		Limit(1).Scan(&row).Error
	if err != nil {
		return GatewayIdentity{}, fmt.Errorf("look up gateway key: %w", err)
	}
	if row.KeyID == "" {
		return GatewayIdentity{}, notFound("tenant key")
	}
	id := GatewayIdentity{TenantID: row.TenantID, TenantSlug: row.TenantSlug, KeyID: row.KeyID, KeyName: row.KeyName}
	if err := ensureActive(Tenant{Status: row.Status, SuspendReason: row.SuspendReason}); err != nil {
		return id, err
	}
	return id, nil
}

// GatewayTarget resolves the host a gateway client asked to reach, relative
// to the signed-in tenant: "<vm>.<tenant>.<zone>", "<vm>.<tenant>", "<vm>",
// or the address of one of the tenant's VMs. It answers the VM's address and
// name only for a running VM of that tenant that holds an address; anything
// else is ErrNotFound, worded so another tenant's VMs stay invisible. A
// tenant suspended since it signed in is ErrSuspended.
func (s *Store) GatewayTarget(ctx context.Context, tenantID, host, zone string) (netip.Addr, string, error) {
	db := s.db.WithContext(ctx)
	var ten Tenant
	if err := db.Where("id = ?", tenantID).Take(&ten).Error; err != nil {
		if errIsNotFound(err) {
			return netip.Addr{}, "", notFound("tenant")
		}
		return netip.Addr{}, "", fmt.Errorf("load tenant: %w", err)
	}
	if err := ensureActive(ten); err != nil {
		return netip.Addr{}, "", err
	}
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	zone = strings.Trim(strings.ToLower(strings.TrimSpace(zone)), ".")
	shown := clean(host)
	q := db.Model(&VM{}).Where("tenant_id = ? AND deleted_at IS NULL", tenantID)
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		q = q.Where("ip = ?", ip.Unmap().String())
	} else {
		name, ok := vmLabel(host, ten.Slug, zone)
		if !ok {
			return netip.Addr{}, "", E(ErrNotFound, "host", fmt.Sprintf("%q is not one of your VMs; use <vm>.%s.%s", shown, ten.Slug, zone))
		}
		q = q.Where("name = ?", name)
	}
	var vm VM
	if err := q.Order("created_at DESC").Take(&vm).Error; err != nil {
		if errIsNotFound(err) {
			return netip.Addr{}, "", E(ErrNotFound, "host", fmt.Sprintf("%q is not one of your VMs", shown))
		}
		return netip.Addr{}, "", fmt.Errorf("load vm: %w", err)
	}
	if vm.State != VMRunning {
		return netip.Addr{}, "", E(ErrNotFound, "host", fmt.Sprintf("VM %s is %s, not running", vm.Name, vm.State))
	}
	ip, err := netip.ParseAddr(vm.IP)
	if err != nil {
		return netip.Addr{}, "", E(ErrNotFound, "host", fmt.Sprintf("VM %s has no address yet", vm.Name))
	}
	return ip, vm.Name, nil
}

// vmLabel takes the VM name out of a host name given relative to the
// tenant: the zone and the tenant's label may be left off, but a name under
// another tenant or another zone is not ours.
func vmLabel(host, slug, zone string) (string, bool) {
	for _, suffix := range []string{"." + slug + "." + zone, "." + slug} {
		if zone == "" && suffix != "."+slug {
			continue
		}
		if strings.HasSuffix(host, suffix) {
			host = strings.TrimSuffix(host, suffix)
			break
		}
	}
	if ValidHostname(host) != nil {
		return "", false
	}
	return host, true
}

// GatewayRevoked tells which of these keys no longer let their holders in:
// the key was removed, or its tenant is suspended. It maps the id of each
// such key to the reason; keys still good are absent. The gateway asks
// every few seconds for the keys its open connections signed in with.
func (s *Store) GatewayRevoked(ctx context.Context, keyIDs []string) (map[string]string, error) {
	out := map[string]string{}
	db := s.db.WithContext(ctx)
	for chunk := range slices.Chunk(keyIDs, 500) {
		var rows []struct {
			KeyID, Status, SuspendReason string
		}
		if err := db.Table("ssh_keys").
			Select("ssh_keys.id AS key_id, tenants.status AS status, tenants.suspend_reason AS suspend_reason").
			Joins("JOIN tenants ON tenants.id = ssh_keys.tenant_id").
			Where("ssh_keys.id IN ?", chunk).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("check gateway keys: %w", err)
		}
		found := make(map[string]bool, len(rows))
		for _, r := range rows {
			found[r.KeyID] = true
			if err := ensureActive(Tenant{Status: r.Status, SuspendReason: r.SuspendReason}); err != nil {
				out[r.KeyID] = err.Error()
			}
		}
		for _, id := range chunk {
			if !found[id] {
				out[id] = "the SSH key was removed from the account"
			}
		}
	}
	return out, nil
}
