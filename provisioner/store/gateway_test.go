package store_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// gatewayVM orders a VM and plays the provisioner: it leaves the VM in state,
// with an address when addressed is true.
func gatewayVM(t *testing.T, s *store.Store, f fixture, name, state string, addressed bool) store.VM {
	t.Helper()
	ctx := context.Background()
	vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, name, "nano"))
	if err != nil {
		t.Fatalf("create vm %s: %v", name, err)
	}
	// Claims serve the oldest due VM first; earlier VMs stay leased.
	for range 20 {
		got, ok, err := s.ClaimVM(ctx, "gateway-test", time.Hour)
		if err != nil || !ok {
			t.Fatalf("claim %s: ok=%v err=%v", name, ok, err)
		}
		if got.ID == vm.ID {
			break
		}
	}
	if err := s.SetVMState(ctx, vm.ID, "gateway-test", state, ""); err != nil {
		t.Fatalf("set state of %s: %v", name, err)
	}
	if addressed {
		a, err := s.AllocateIP(ctx, vm.ID)
		if err != nil {
			t.Fatalf("allocate address for %s: %v", name, err)
		}
		vm.IP = a.IP.String()
	}
	return vm
}

func TestGatewayAuth(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acme := setup(t, s, "acme")
		globex := setup(t, s, "globex")
		// The same key may belong to two tenants; the login user decides.
		shared, err := s.AddSSHKey(ctx, globex.actor, globex.tenant.ID, "shared", acme.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		unknown, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pubKey(t)))
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, slug, fingerprint string
			want                    store.GatewayIdentity
			wantErr                 error
		}{
			{"own key", "acme", acme.key.Fingerprint, store.GatewayIdentity{TenantID: acme.tenant.ID, TenantSlug: "acme", KeyID: acme.key.ID, KeyName: "laptop"}, nil},
			{"slug in capitals", "ACME", acme.key.Fingerprint, store.GatewayIdentity{TenantID: acme.tenant.ID, TenantSlug: "acme", KeyID: acme.key.ID, KeyName: "laptop"}, nil},
			{"shared key as the other tenant", "globex", acme.key.Fingerprint, store.GatewayIdentity{TenantID: globex.tenant.ID, TenantSlug: "globex", KeyID: shared.ID, KeyName: "shared"}, nil},
			{"key of another tenant", "acme", globex.key.Fingerprint, store.GatewayIdentity{}, store.ErrNotFound},
			{"unknown key", "acme", ssh.FingerprintSHA256(unknown), store.GatewayIdentity{}, store.ErrNotFound},
			{"unknown tenant", "initech", acme.key.Fingerprint, store.GatewayIdentity{}, store.ErrNotFound},
			{"empty user", "", acme.key.Fingerprint, store.GatewayIdentity{}, store.ErrNotFound},
			{"empty fingerprint", "acme", "", store.GatewayIdentity{}, store.ErrNotFound},
			{"wildcard is literal", "ac%", acme.key.Fingerprint, store.GatewayIdentity{}, store.ErrNotFound},
		}
		for _, tc := range cases {
			got, err := s.GatewayAuth(ctx, tc.slug, tc.fingerprint)
			if kindOf(err) != tc.wantErr {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: identity (-want +got):\n%s", tc.name, diff)
			}
		}

		if err := s.SuspendTenant(ctx, staff, acme.tenant.ID, "unpaid invoice"); err != nil {
			t.Fatal(err)
		}
		got, err := s.GatewayAuth(ctx, "acme", acme.key.Fingerprint)
		if !errors.Is(err, store.ErrSuspended) || got.TenantID != acme.tenant.ID {
			t.Fatalf("suspended tenant: %+v, %v; want the identity and ErrSuspended", got, err)
		}
		if e, ok := store.AsError(err); !ok || e.Message != "this account is suspended: unpaid invoice" {
			t.Errorf("suspended message = %q", err)
		}
		if _, err := s.GatewayAuth(ctx, "globex", acme.key.Fingerprint); err != nil {
			t.Errorf("the other tenant is not suspended: %v", err)
		}
	})
}

func TestGatewayTarget(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "10.30.0.0/24", Gateway: "10.30.0.1",
			RangeStart: "10.30.0.10", RangeEnd: "10.30.0.50"}); err != nil {
			t.Fatal(err)
		}
		acme := setup(t, s, "acme")
		globex := setup(t, s, "globex")
		for _, f := range []fixture{acme, globex} {
			q := store.Quota{Instances: 5, VCPUs: 5, MemoryMiB: 5 * 512, DiskGiB: 50, SSHKeys: 5, PortForwards: 5}
			if err := s.SetTenantQuota(ctx, staff, f.tenant.ID, q); err != nil {
				t.Fatal(err)
			}
		}
		web := gatewayVM(t, s, acme, "web", store.VMRunning, true)
		gatewayVM(t, s, acme, "off", store.VMStopped, true)
		gatewayVM(t, s, acme, "bare", store.VMRunning, false)
		db := gatewayVM(t, s, globex, "db", store.VMRunning, true)
		gatewayVM(t, s, globex, "web", store.VMRunning, true)
		if web.IP != "10.30.0.10" {
			t.Fatalf("web got %s; the cases below expect 10.30.0.10", web.IP)
		}

		const zone = "cloud.internal"
		cases := []struct {
			name, host, zone string
			wantIP, wantVM   string
			wantErr          error
		}{
			{"full name", "web.acme.cloud.internal", zone, "10.30.0.10", "web", nil},
			{"trailing dot and capitals", "WEB.Acme.Cloud.Internal.", zone, "10.30.0.10", "web", nil},
			{"relative to the tenant", "web.acme", zone, "10.30.0.10", "web", nil},
			{"bare name", "web", zone, "10.30.0.10", "web", nil},
			{"own address", "10.30.0.10", zone, "10.30.0.10", "web", nil},
			{"zone given with dots", "web.acme.cloud.internal", ".cloud.internal.", "10.30.0.10", "web", nil},
			{"other tenant's vm by full name", "db.globex.cloud.internal", zone, "", "", store.ErrNotFound},
			{"other tenant's vm by bare name", "db", zone, "", "", store.ErrNotFound},
			{"other tenant's vm by address", db.IP, zone, "", "", store.ErrNotFound},
			{"same name in the other tenant", "web.globex.cloud.internal", zone, "", "", store.ErrNotFound},
			{"another zone", "web.acme.example.com", zone, "", "", store.ErrNotFound},
			{"stopped vm", "off.acme.cloud.internal", zone, "", "", store.ErrNotFound},
			{"vm without an address", "bare", zone, "", "", store.ErrNotFound},
			{"arbitrary address", "127.0.0.1", zone, "", "", store.ErrNotFound},
			{"arbitrary name", "example.com", zone, "", "", store.ErrNotFound},
			{"empty", "", zone, "", "", store.ErrNotFound},
			{"sql wildcard", "w%", zone, "", "", store.ErrNotFound},
		}
		for _, tc := range cases {
			ip, name, err := s.GatewayTarget(ctx, acme.tenant.ID, tc.host, tc.zone)
			if kindOf(err) != tc.wantErr {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
				continue
			}
			var want netip.Addr
			if tc.wantIP != "" {
				want = netip.MustParseAddr(tc.wantIP)
			}
			if ip != want || name != tc.wantVM {
				t.Errorf("%s: got %v %q, want %v %q", tc.name, ip, name, want, tc.wantVM)
			}
		}
		if _, _, err := s.GatewayTarget(ctx, "no-such-tenant", "web", zone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown tenant: %v", err)
		}
		if err := s.SuspendTenant(ctx, staff, acme.tenant.ID, "abuse report"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.GatewayTarget(ctx, acme.tenant.ID, "web", zone); !errors.Is(err, store.ErrSuspended) {
			t.Errorf("suspended tenant: %v, want ErrSuspended", err)
		}
	})
}
