package store_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// eachDBRaw is eachDB plus a second, plain connection to the same database,
// used to write rows (subnets, addresses, MACs) that belong to other parts of
// the provisioner so these tests do not depend on them.
func eachDBRaw(t *testing.T, fn func(t *testing.T, s *store.Store, raw *gorm.DB)) {
	t.Helper()
	eachDBURL(t, func(t *testing.T, s *store.Store, _ string, raw *gorm.DB) { fn(t, s, raw) })
}

func rawDB(t *testing.T, d gorm.Dialector) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open raw connection: %v", err)
	}
	sqlDB, _ := db.DB()
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

// giveAddress records what the provisioner's IPAM and preparation steps
// would: a MAC on the VM and an address in a subnet.
func giveAddress(t *testing.T, raw *gorm.DB, vmID, mac, address string) {
	t.Helper()
	ts := time.Now().UTC()
	if err := raw.Exec(`INSERT INTO subnets (id, name, cidr, gateway, dns_servers, range_start, range_end, created_at, updated_at)
		VALUES ('sn-1', 'lan', '10.20.0.0/24', '10.20.0.1', '10.20.0.1, 9.9.9.9', '10.20.0.10', '10.20.0.200', ?, ?)
		ON CONFLICT DO NOTHING`, ts, ts).Error; err != nil {
		t.Fatalf("insert subnet: %v", err)
	}
	if err := raw.Exec(`INSERT INTO ip_addresses (subnet_id, address, vm_id, created_at) VALUES ('sn-1', ?, ?, ?)`, address, vmID, ts).Error; err != nil {
		t.Fatalf("insert address: %v", err)
	}
	if err := raw.Exec(`UPDATE vms SET mac = ? WHERE id = ?`, mac, vmID).Error; err != nil {
		t.Fatalf("set mac: %v", err)
	}
}

var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func TestEnsureMetadataToken(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "tok")
		a, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "a", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "b", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		// Racing preparations of the same VM agree on one token.
		const workers = 8
		toks := make([]string, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() { toks[i], errs[i] = s.EnsureMetadataToken(ctx, a.ID) })
		}
		wg.Wait()
		for i := range workers {
			if errs[i] != nil || toks[i] != toks[0] {
				t.Fatalf("worker %d: token differs or failed: %v", i, errs[i])
			}
		}
		raw, err := base64.RawURLEncoding.DecodeString(toks[0])
		if err != nil || len(raw) < 16 {
			t.Errorf("token is not ≥128 bits of base64url: %d bytes, %v", len(raw), err)
		}
		again, err := s.EnsureMetadataToken(ctx, a.ID)
		if err != nil || again != toks[0] {
			t.Errorf("second call returned another token or failed: %v", err)
		}
		tb, err := s.EnsureMetadataToken(ctx, b.ID)
		if err != nil || tb == toks[0] {
			t.Errorf("second VM got the same token or failed: %v", err)
		}
		if _, err := s.EnsureMetadataToken(ctx, "no-such-vm"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown vm: %v, want not found", err)
		}
	})
}

func TestMetadataByToken(t *testing.T) {
	eachDBRaw(t, func(t *testing.T, s *store.Store, raw *gorm.DB) {
		ctx := context.Background()
		f := setup(t, s, "metacorp")
		second, err := s.AddSSHKey(ctx, f.actor, f.tenant.ID, "zz-desktop", pubKey(t))
		if err != nil {
			t.Fatal(err)
		}
		o := order(f, "web", "nano")
		o.SSHKeys = append(o.SSHKeys, second.ID)
		o.UserData = "#cloud-config\npackages: [nginx]\n"
		web, err := s.CreateVM(ctx, f.actor, f.tenant.ID, o)
		if err != nil {
			t.Fatal(err)
		}
		db, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "db", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		webTok, _ := s.EnsureMetadataToken(ctx, web.ID)
		dbTok, _ := s.EnsureMetadataToken(ctx, db.ID)
		giveAddress(t, raw, web.ID, "52:54:00:12:34:56", "10.20.0.11")

		got, err := s.MetadataByToken(ctx, webTok)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Metadata{
			VMID: web.ID, Name: "web", TenantSlug: "metacorp", State: store.VMPending, MAC: "52:54:00:12:34:56",
			UserData: o.UserData,
			SSHKeys:  []string{strings.TrimSpace(f.key.PublicKey), strings.TrimSpace(second.PublicKey)},
			Address: &store.VMAddress{
				Addr:    netip.MustParseAddr("10.20.0.11"),
				Prefix:  netip.MustParsePrefix("10.20.0.11/24"),
				Gateway: netip.MustParseAddr("10.20.0.1"),
				DNS:     []netip.Addr{netip.MustParseAddr("10.20.0.1"), netip.MustParseAddr("9.9.9.9")},
			},
		}
		if diff := cmp.Diff(want, got, netipEqual); diff != "" {
			t.Errorf("metadata (-want +got):\n%s", diff)
		}

		// The other VM's token yields only that VM: one key, no user data, no address yet.
		other, err := s.MetadataByToken(ctx, dbTok)
		if err != nil {
			t.Fatal(err)
		}
		if other.VMID != db.ID || other.UserData != "" || other.Address != nil || len(other.SSHKeys) != 1 {
			t.Errorf("db metadata = %+v", other)
		}

		// A key deleted from the tenant is no longer served.
		if err := s.DeleteSSHKey(ctx, f.actor, f.tenant.ID, second.ID); err != nil {
			t.Fatal(err)
		}
		got, err = s.MetadataByToken(ctx, webTok)
		if err != nil || len(got.SSHKeys) != 1 || got.SSHKeys[0] != strings.TrimSpace(f.key.PublicKey) {
			t.Errorf("keys after deleting one = %q, %v", got.SSHKeys, err)
		}

		// Change the first character to a different one of the same alphabet.
		flipped := "A" + webTok[1:]
		if webTok[0] == 'A' {
			flipped = "B" + webTok[1:]
		}
		for name, tok := range map[string]string{
			"empty":            "",
			"unknown":          flipped,
			"prefix of a real": webTok[:20],
		} {
			if _, err := s.MetadataByToken(ctx, tok); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s token: %v, want not found", name, err)
			}
		}

		// Being deleted, and deleted, are both gone.
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, db.ID, store.OpDelete); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MetadataByToken(ctx, dbTok); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("vm being deleted: %v, want not found", err)
		}
		if err := raw.Exec(`UPDATE vms SET deleted_at = ? WHERE id = ?`, time.Now().UTC(), web.ID).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := s.MetadataByToken(ctx, webTok); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted vm: %v, want not found", err)
		}
	})
}
