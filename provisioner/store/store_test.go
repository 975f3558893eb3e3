package store_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/pgtest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// eachDB runs fn against a fresh, migrated SQLite file and a fresh PostgreSQL database.
func eachDB(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openStore(t, filepath.Join(t.TempDir(), "fibrix.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openStore(t, pgtest.DSN(t)))
	})
}

func openStore(t testing.TB, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CheckSchema(ctx); err == nil {
		t.Fatal("CheckSchema on an empty database: want an error")
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := s.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after migrate: %v", err)
	}
	return s
}

func pubKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(sp))
}

type fixture struct {
	tenant store.Tenant
	owner  store.User
	actor  store.Actor
	key    store.SSHKey
	image  store.Image
}

func setup(t testing.TB, s *store.Store, name string) fixture {
	t.Helper()
	ctx := context.Background()
	ten, u, err := s.SignUp(ctx, store.Actor{IP: "192.0.2.1"}, name, name+"@example.com", "hash")
	if err != nil {
		t.Fatalf("signup: %v", err)
	}
	a := store.Actor{UserID: u.ID, Email: u.Email, TenantID: ten.ID, IP: "192.0.2.1"}
	k, err := s.AddSSHKey(ctx, a, ten.ID, "laptop", pubKey(t))
	if err != nil {
		t.Fatalf("add key: %v", err)
	}
	img, err := s.GetImage(ctx, "debian-12")
	if err != nil {
		img, err = s.CreateImage(ctx, store.Actor{Email: "staff@example.com"}, store.ImageInput{
			Name: "debian-12", OS: "Debian", Version: "12", SourceURL: "https://images.example.com/debian-12.qcow2",
			Checksum: "sha256:" + fmt.Sprintf("%064x", 1), Enabled: true,
		})
		if err != nil {
			t.Fatalf("create image: %v", err)
		}
	}
	// Orders reserve capacity on a host, so every fixture has a roomy one.
	if _, err := s.GetHost(ctx, "fixture-kvm"); errors.Is(err, store.ErrNotFound) {
		addHost(t, s, store.HostInput{Name: "fixture-kvm"}, roomy)
	}
	return fixture{ten, u, a, k, img}
}

func kindOf(err error) error {
	for _, k := range []error{store.ErrNotFound, store.ErrInvalid, store.ErrConflict, store.ErrQuota, store.ErrInvalidTransition, store.ErrSuspended} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

func TestSignUp(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ten, u, err := s.SignUp(ctx, store.Actor{}, "  Acme   Hosting ", "Ops@Example.COM", "h")
		if err != nil {
			t.Fatal(err)
		}
		if ten.Name != "Acme Hosting" || ten.Slug != "acme-hosting" || u.Email != "ops@example.com" || u.Role != store.RoleOwner {
			t.Errorf("got tenant %q/%q user %q/%q", ten.Name, ten.Slug, u.Email, u.Role)
		}
		def, err := s.DefaultQuota(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(def, ten.Quota()); diff != "" {
			t.Errorf("new tenant quota differs from defaults (-want +got):\n%s", diff)
		}
		if _, _, err := s.SignUp(ctx, store.Actor{}, "Machines", "m@example.com", "h"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("tenant named Machines: %v; the machines subzone is reserved", err)
		}
		if _, _, err := s.SignUp(ctx, store.Actor{}, "ACME hosting", "c@example.com", "h"); err == nil {
			t.Error("an organisation name differing only in case was accepted")
		}
		ten2, _, err := s.SignUp(ctx, store.Actor{}, "Acme-Hosting", "b@example.com", "h")
		if err != nil {
			t.Fatal(err)
		}
		if ten2.Slug != "acme-hosting-2" {
			t.Errorf("second slug = %q", ten2.Slug)
		}
		for name, tc := range map[string]struct{ tenant, email string }{
			"duplicate email": {"Other", "ops@example.com"},
			"bad email":       {"Other", "not-an-email"},
			"empty tenant":    {"  ", "x@example.com"},
			"symbols only":    {"!!!", "x@example.com"},
		} {
			if _, _, err := s.SignUp(ctx, store.Actor{}, tc.tenant, tc.email, "h"); err == nil {
				t.Errorf("%s: want an error", name)
			}
		}
		_, total, err := s.ListTenants(ctx, "", store.Page{})
		if err != nil || total != 2 {
			t.Errorf("tenants after refusals = %d, %v; want 2", total, err)
		}
	})
}

func TestSSHKeys(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "keys")
		other := setup(t, s, "other")
		cases := []struct {
			name, keyName, input string
			want                 error
		}{
			{"duplicate", "again", f.key.PublicKey, store.ErrConflict},
			{"garbage", "x", "ssh-ed25519 AAAAnotbase64", store.ErrInvalid},
			{"empty", "x", "", store.ErrInvalid},
			{"no name and no comment", "", "ssh-ed25519 " + pubKeyBody(t), store.ErrInvalid},
		}
		for _, tc := range cases {
			if _, err := s.AddSSHKey(ctx, f.actor, f.tenant.ID, tc.keyName, tc.input); kindOf(err) != tc.want {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
		// The same key may live in another tenant.
		if _, err := s.AddSSHKey(ctx, other.actor, other.tenant.ID, "shared", f.key.PublicKey); err != nil {
			t.Errorf("same key in another tenant: %v", err)
		}
		if _, err := s.GetSSHKey(ctx, other.tenant.ID, f.key.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-tenant get: %v, want not found", err)
		}
		if err := s.DeleteSSHKey(ctx, other.actor, other.tenant.ID, f.key.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-tenant delete: %v, want not found", err)
		}
		keys, total, err := s.ListSSHKeys(ctx, f.tenant.ID, store.Page{})
		if err != nil || total != 1 || len(keys) != 1 {
			t.Fatalf("list = %d keys, total %d, %v", len(keys), total, err)
		}
		// Key quota.
		q, _, _ := s.QuotaUsage(ctx, f.tenant.ID)
		q.SSHKeys = 1
		if err := s.SetTenantQuota(ctx, store.Actor{Email: "staff"}, f.tenant.ID, q); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddSSHKey(ctx, f.actor, f.tenant.ID, "second", pubKey(t)); !errors.Is(err, store.ErrQuota) {
			t.Errorf("over key quota: %v", err)
		}
		if err := s.DeleteSSHKey(ctx, f.actor, f.tenant.ID, f.key.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func pubKeyBody(t testing.TB) string {
	var typ, body string
	fmt.Sscan(pubKey(t), &typ, &body)
	return body
}

func order(f fixture, name, plan string) store.VMOrder {
	return store.VMOrder{Name: name, Plan: plan, Image: f.image.Name, SSHKeys: []string{f.key.ID}}
}

func TestCreateVM(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "vms")
		other := setup(t, s, "neighbour")
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "web-1", "small"))
		if err != nil {
			t.Fatal(err)
		}
		if vm.State != store.VMPending || vm.DesiredState != store.VMRunning || vm.MemoryMiB != 2048 {
			t.Errorf("vm = %+v", vm)
		}
		bad := []struct {
			name string
			o    store.VMOrder
			want error
		}{
			{"duplicate name", order(f, "web-1", "small"), store.ErrConflict},
			{"uppercase", order(f, "Web-2", "small"), store.ErrInvalid},
			{"leading dash", order(f, "-web", "small"), store.ErrInvalid},
			{"too long", order(f, string(make([]byte, 64)), "small"), store.ErrInvalid},
			{"unknown plan", order(f, "web-2", "huge"), store.ErrInvalid},
			{"no keys", store.VMOrder{Name: "web-2", Plan: "small", Image: "debian-12"}, store.ErrInvalid},
			{"other tenant's key", store.VMOrder{Name: "web-2", Plan: "small", Image: "debian-12", SSHKeys: []string{other.key.ID}}, store.ErrInvalid},
			{"user data too big", store.VMOrder{Name: "web-2", Plan: "small", Image: "debian-12", SSHKeys: []string{f.key.ID}, UserData: string(make([]byte, store.MaxUserData+1))}, store.ErrInvalid},
		}
		for _, tc := range bad {
			if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, tc.o); kindOf(err) != tc.want {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
		// The same name is fine in another tenant.
		if _, err := s.CreateVM(ctx, other.actor, other.tenant.ID, order(other, "web-1", "nano")); err != nil {
			t.Errorf("same name in another tenant: %v", err)
		}
		_, total, _ := s.ListVMs(ctx, f.tenant.ID, store.Page{})
		if total != 1 {
			t.Errorf("vms after refusals = %d, want 1", total)
		}
		d, err := s.GetVM(ctx, f.tenant.ID, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.PlanName != "small" || len(d.Keys) != 1 || len(d.Steps) != 1 || d.Steps[0].Step != "order" {
			t.Errorf("detail = plan %q, %d keys, %d steps", d.PlanName, len(d.Keys), len(d.Steps))
		}
		if _, err := s.GetVM(ctx, other.tenant.ID, vm.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		// Audit: the success and the refusals are recorded for the tenant.
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{TenantID: f.tenant.ID, Action: "vm.create"}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var ok, failed int
		for _, e := range entries {
			if e.Result == store.ResultSuccess {
				ok++
			} else {
				failed++
			}
		}
		if ok != 1 || failed != len(bad) {
			t.Errorf("audit vm.create: %d success, %d failure; want 1, %d", ok, failed, len(bad))
		}
	})
}

func TestQuotaRefusalNamesLimit(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "quota")
		q := store.Quota{Instances: 5, VCPUs: 8, MemoryMiB: 6144, DiskGiB: 200, SSHKeys: 5}
		if err := s.SetTenantQuota(ctx, store.Actor{}, f.tenant.ID, q); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "a", "small")); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "b", "large"))
		if !errors.Is(err, store.ErrQuota) || err.Error() != "needs 8 GiB RAM; 4 GiB left in your quota" {
			t.Errorf("err = %v", err)
		}
		if err := s.SetTenantQuota(ctx, store.Actor{}, f.tenant.ID, store.Quota{Instances: -1}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("negative quota: %v", err)
		}
		limits, used, err := s.QuotaUsage(ctx, f.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(store.Quota{Instances: 1, VCPUs: 1, MemoryMiB: 2048, DiskGiB: 20, SSHKeys: 1}, used); diff != "" {
			t.Errorf("usage (-want +got):\n%s", diff)
		}
		if limits != q {
			t.Errorf("limits = %+v", limits)
		}
	})
}

// TestConcurrentOrdersRespectQuota races many orders for the last quota
// units on PostgreSQL: exactly the allowed number succeed.
func TestConcurrentOrdersRespectQuota(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.DSN(t))
	f := setup(t, s, "race")
	const allowed, workers = 3, 24
	if err := s.SetTenantQuota(ctx, store.Actor{}, f.tenant.ID, store.Quota{Instances: 100, VCPUs: 100, MemoryMiB: allowed * 2048, DiskGiB: 1000, SSHKeys: 5}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, fmt.Sprintf("vm-%d", i), "small"))
		}()
	}
	close(start)
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrQuota):
			t.Errorf("unexpected error: %v", err)
		}
	}
	_, used, _ := s.QuotaUsage(ctx, f.tenant.ID)
	if ok != allowed || used.MemoryMiB != allowed*2048 {
		t.Errorf("%d orders succeeded using %d MiB; want %d using %d", ok, used.MemoryMiB, allowed, allowed*2048)
	}
}

func TestActions(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "actions")
		other := setup(t, s, "intruder")
		vm, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "db", "nano"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpStart); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("start while pending: %v", err)
		}
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, "explode"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown action: %v", err)
		}
		if _, err := s.RequestAction(ctx, other.actor, other.tenant.ID, vm.ID, store.OpDelete); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-tenant delete: %v", err)
		}
		op, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpDelete)
		if err != nil {
			t.Fatal(err)
		}
		if op.State != store.OpQueued || op.Type != store.OpDelete {
			t.Errorf("op = %+v", op)
		}
		d, _ := s.GetVM(ctx, f.tenant.ID, vm.ID)
		if d.State != store.VMDeleting || d.DesiredState != store.VMDeleted || len(d.Operations) != 1 {
			t.Errorf("after delete: state %s desired %s ops %d", d.State, d.DesiredState, len(d.Operations))
		}
		if _, err := s.RequestAction(ctx, f.actor, f.tenant.ID, vm.ID, store.OpDelete); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("second delete: %v", err)
		}
	})
}

func TestSuspendedTenantCannotChange(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "suspended")
		staff := store.Actor{Email: "staff@example.com"}
		if err := s.SuspendTenant(ctx, staff, f.tenant.ID, ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("suspend without reason: %v", err)
		}
		if err := s.SuspendTenant(ctx, staff, f.tenant.ID, "unpaid invoice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "x", "nano")); !errors.Is(err, store.ErrSuspended) || err.Error() != "this account is suspended: unpaid invoice" {
			t.Errorf("order while suspended: %v", err)
		}
		if err := s.SuspendTenant(ctx, staff, f.tenant.ID, "again"); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("suspend twice: %v", err)
		}
		if err := s.UnsuspendTenant(ctx, staff, f.tenant.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, order(f, "x", "nano")); err != nil {
			t.Errorf("order after unsuspend: %v", err)
		}
	})
}

func TestMembersAndInvitations(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "team")
		other := setup(t, s, "rival")
		inv, token, err := s.CreateInvitation(ctx, f.actor, f.tenant.ID, "New@Example.com", store.RoleMember)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateInvitation(ctx, f.actor, f.tenant.ID, "new@example.com", store.RoleMember); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second invitation: %v", err)
		}
		if _, _, err := s.CreateInvitation(ctx, f.actor, f.tenant.ID, "team@example.com", store.RoleMember); !errors.Is(err, store.ErrConflict) {
			t.Errorf("invite existing user: %v", err)
		}
		if err := s.DeleteInvitation(ctx, other.actor, other.tenant.ID, inv.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-tenant revoke: %v", err)
		}
		u, err := s.AcceptInvitation(ctx, store.Actor{}, token, "h")
		if err != nil {
			t.Fatal(err)
		}
		if u.Tenant() != f.tenant.ID || u.Role != store.RoleMember || u.Email != "new@example.com" {
			t.Errorf("joined user = %+v", u)
		}
		if _, err := s.AcceptInvitation(ctx, store.Actor{}, token, "h"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token reuse: %v", err)
		}
		if err := s.SetMemberRole(ctx, f.actor, f.tenant.ID, f.owner.ID, store.RoleMember); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("demote last owner: %v", err)
		}
		if err := s.RemoveMember(ctx, other.actor, other.tenant.ID, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cross-tenant remove: %v", err)
		}
		if err := s.SetMemberRole(ctx, f.actor, f.tenant.ID, u.ID, store.RoleOwner); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMemberRole(ctx, f.actor, f.tenant.ID, f.owner.ID, store.RoleReadOnly); err != nil {
			t.Errorf("demote one of two owners: %v", err)
		}
		members, _ := s.ListMembers(ctx, f.tenant.ID)
		if len(members) != 2 {
			t.Errorf("members = %d", len(members))
		}
	})
}

func TestAPITokens(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "tokens")
		tok, raw, err := s.CreateAPIToken(ctx, f.actor, f.owner.ID, "ci", store.ScopeRead)
		if err != nil {
			t.Fatal(err)
		}
		if tok.TokenHash == raw || tok.Prefix != raw[:12] {
			t.Errorf("token stored in clear or bad prefix")
		}
		got, u, err := s.AuthenticateToken(ctx, raw)
		if err != nil || got.ID != tok.ID || u.ID != f.owner.ID || got.Scope != store.ScopeRead {
			t.Errorf("authenticate: %v", err)
		}
		if _, _, err := s.AuthenticateToken(ctx, raw+"x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("wrong token: %v", err)
		}
		if _, _, err := s.CreateAPIToken(ctx, f.actor, f.owner.ID, "x", "admin"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad scope: %v", err)
		}
		if err := s.DeleteAPIToken(ctx, f.actor, f.owner.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.AuthenticateToken(ctx, raw); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoked token still works: %v", err)
		}
	})
}

func TestCatalogValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := store.Actor{Email: "admin@example.com"}
		plans, err := s.ListPlans(ctx, true)
		if err != nil || len(plans) != 4 {
			t.Fatalf("default plans = %d, %v", len(plans), err)
		}
		for name, in := range map[string]store.PlanInput{
			"zero cpus":    {Name: "p", VCPUs: 0, MemoryMiB: 512, DiskGiB: 10},
			"tiny memory":  {Name: "p", VCPUs: 1, MemoryMiB: 64, DiskGiB: 10},
			"negative":     {Name: "p", VCPUs: 1, MemoryMiB: 512, DiskGiB: -1},
			"bad name":     {Name: "a b", VCPUs: 1, MemoryMiB: 512, DiskGiB: 10},
			"existing one": {Name: "small", VCPUs: 1, MemoryMiB: 512, DiskGiB: 10},
		} {
			if _, err := s.CreatePlan(ctx, a, in); err == nil {
				t.Errorf("%s: want an error", name)
			}
		}
		for name, in := range map[string]store.ImageInput{
			"bad checksum": {Name: "i", OS: "Debian", Version: "12", SourceURL: "https://x.example/i", Checksum: "abc"},
			"bad url":      {Name: "i", OS: "Debian", Version: "12", SourceURL: "ftp://x", Checksum: fmt.Sprintf("%064x", 2)},
			"creds in url": {Name: "i", OS: "Debian", Version: "12", SourceURL: "https://u:p@x.example/i", Checksum: fmt.Sprintf("%064x", 2)},
			"no os":        {Name: "i", Version: "12", SourceURL: "https://x.example/i", Checksum: fmt.Sprintf("%064x", 2)},
		} {
			if _, err := s.CreateImage(ctx, a, in); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: err = %v", name, err)
			}
		}
		if imgs, _ := s.ListImages(ctx, false, ""); len(imgs) != 0 {
			t.Errorf("images after refusals = %d", len(imgs))
		}
		p, err := s.CreatePlan(ctx, a, store.PlanInput{Name: "xl", VCPUs: 8, MemoryMiB: 16384, DiskGiB: 160, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdatePlan(ctx, a, p.ID, store.PlanInput{Name: "xl", VCPUs: 8, MemoryMiB: 16384, DiskGiB: 160, Enabled: false}); err != nil {
			t.Fatal(err)
		}
		if plans, _ := s.ListPlans(ctx, true); len(plans) != 4 {
			t.Errorf("enabled plans after disabling xl = %d", len(plans))
		}
		hidden, err := s.CreatePlan(ctx, a, store.PlanInput{Name: "beta", VCPUs: 1, MemoryMiB: 512, DiskGiB: 5})
		if err != nil || hidden.Enabled {
			t.Errorf("plan created disabled: enabled=%v err=%v", hidden.Enabled, err)
		}
	})
}

func TestSecretIsStable(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, err := s.Secret(ctx, "jwt", func() string { return "first" })
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Secret(ctx, "jwt", func() string { return "second" })
		if err != nil || a != "first" || b != "first" {
			t.Errorf("secret = %q, %q, %v", a, b, err)
		}
	})
}

func TestFormatMiB(t *testing.T) {
	for in, want := range map[int64]string{512: "512 MiB", 1024: "1 GiB", 2560: "2.5 GiB", 16384: "16 GiB"} {
		if got := store.FormatMiB(in); got != want {
			t.Errorf("FormatMiB(%d) = %q, want %q", in, got, want)
		}
	}
}
