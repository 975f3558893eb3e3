package store_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func newPub(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

func machineImage(t *testing.T, s *store.Store, name string) store.Image {
	t.Helper()
	img, err := s.CreateImage(context.Background(), staffActor, store.ImageInput{Name: name, OS: "Debian", Version: "12",
		SourceURL: "http://10.9.0.1:8082/boot/images/" + name + ".img.gz", Checksum: strings.Repeat("c", 64), Kind: store.ImageMachine, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImageKinds(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		base := store.ImageInput{Name: "m", OS: "Debian", Version: "12", SourceURL: "https://x.example/m.img.gz", Checksum: strings.Repeat("a", 64), Enabled: true}
		for name, tc := range map[string]struct {
			mod   func(in *store.ImageInput)
			field string
		}{
			"unknown kind":         {func(in *store.ImageInput) { in.Kind = "container" }, "kind"},
			"machine from file://": {func(in *store.ImageInput) { in.Kind, in.SourceURL = store.ImageMachine, "file:///srv/m.img" }, "source_url"},
			"machine with a kernel": {func(in *store.ImageInput) {
				in.Kind, in.KernelURL, in.InitrdURL = store.ImageMachine, "https://x/k", "https://x/i"
			}, "kernel_url"},
		} {
			in := base
			tc.mod(&in)
			if _, err := s.CreateImage(ctx, staffActor, in); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: %v", name, err)
			} else if e, _ := store.AsError(err); e.Field != tc.field {
				t.Errorf("%s: field %q, want %q", name, e.Field, tc.field)
			}
		}
		if ims, _ := s.ListImages(ctx, false, ""); len(ims) != 0 {
			t.Fatalf("refused images were stored: %v", ims)
		}
		vmImg, err := s.CreateImage(ctx, staffActor, store.ImageInput{Name: "vm", OS: "Debian", Version: "12", SourceURL: "file:///srv/vm.qcow2", Checksum: strings.Repeat("b", 64), Enabled: true})
		if err != nil || vmImg.Kind != store.ImageVM {
			t.Fatalf("vm image: %+v %v", vmImg, err)
		}
		mImg := machineImage(t, s, "metal")
		vms, _ := s.ListImages(ctx, true, store.ImageVM)
		ms, _ := s.ListImages(ctx, true, store.ImageMachine)
		if len(vms) != 1 || vms[0].ID != vmImg.ID || len(ms) != 1 || ms[0].ID != mImg.ID {
			t.Errorf("by kind: vm %v, machine %v", vms, ms)
		}
		// An update without a kind keeps it.
		in := store.ImageInput{Name: "metal", OS: "Debian", Version: "12.1", SourceURL: mImg.SourceURL, Checksum: mImg.Checksum, Enabled: true}
		if got, err := s.UpdateImage(ctx, staffActor, mImg.ID, in); err != nil || got.Kind != store.ImageMachine || got.Version != "12.1" {
			t.Errorf("update without kind: %+v %v", got, err)
		}

		// Customers cannot order a machine image; machines cannot deploy a VM image.
		f := setup(t, s, "kinds")
		if _, err := s.CreateVM(ctx, f.actor, f.tenant.ID, store.VMOrder{Name: "web", Plan: "small", Image: "metal", SSHKeys: []string{f.key.ID}}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("order with a machine image: %v", err)
		}
		m := enlist(t, s, "node-k", "52:54:00:00:0a:01")
		commissioned(t, s, m.ID)
		if _, err := s.MachineAction(ctx, staffActor, m.ID, store.MachineDeploy, store.MachineActionInput{ImageID: "vm", Disk: "sda"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("deploy a vm image: %v", err)
		}
	})
}

func TestDeploySSHKeys(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if keys, err := s.DeploySSHKeys(ctx); err != nil || len(keys) != 0 {
			t.Fatalf("no keys yet: %v %v", keys, err)
		}
		a, b := newPub(t, "ops@noc"), newPub(t, "oncall")
		got, err := s.SetDeploySSHKeys(ctx, staffActor, []string{a, "  " + b + "\n"})
		if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
			t.Fatalf("set: %q %v", got, err)
		}
		for name, keys := range map[string][]string{
			"garbage":   {a, "not a key"},
			"duplicate": {a, strings.TrimSuffix(a, " ops@noc") + " other comment"},
			"private":   {"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"},
			"options":   {`command="/bin/sh" ` + a},
		} {
			_, err := s.SetDeploySSHKeys(ctx, staffActor, keys)
			if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrInvalid) || e.Field != "keys" {
				t.Errorf("%s: %v", name, err)
			}
		}
		if keys, _ := s.DeploySSHKeys(ctx); !slices.Equal(keys, []string{a, b}) {
			t.Errorf("a refused list changed the keys: %q", keys)
		}
		if got, err := s.SetDeploySSHKeys(ctx, staffActor, nil); err != nil || len(got) != 0 {
			t.Errorf("clear: %q %v", got, err)
		}
	})
}

// deploying takes a commissioned machine into deploying with a fresh token.
func deploying(t *testing.T, s *store.Store, m store.Machine, img string, kvm bool) string {
	t.Helper()
	act(t, s, m.ID, store.MachineDeploy, store.MachineActionInput{ImageID: img, Disk: "sda", KVMHost: kvm})
	tok, err := s.IssueAgentToken(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAgentDeployPlanAndKVMHost(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		img := machineImage(t, s, "metal")
		staff := newPub(t, "ops@noc")
		if _, err := s.SetDeploySSHKeys(ctx, staffActor, []string{staff}); err != nil {
			t.Fatal(err)
		}
		m := enlist(t, s, "node-1", "52:54:00:00:0b:01")
		commissioned(t, s, m.ID)

		// A KVM host deploy needs the provisioner's key to log in with.
		_, err := s.MachineAction(ctx, staffActor, m.ID, store.MachineDeploy, store.MachineActionInput{ImageID: img.ID, Disk: "sda", KVMHost: true})
		if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrConflict) || !strings.Contains(e.Message, "SSH key") {
			t.Fatalf("kvm deploy without provisioner key: %v", err)
		}
		if d, _ := s.GetMachine(ctx, m.ID); d.State != store.MachineReady {
			t.Fatalf("refused deploy moved the machine to %s", d.State)
		}
		prov := newPub(t, "fibrix-provisioner")
		if err := s.SetSetting(ctx, store.SettingProvisionerSSHKey, prov); err != nil {
			t.Fatal(err)
		}

		// The machine's address comes from its DHCP lease.
		sn, err := s.CreateBootSubnet(ctx, staffActor, store.BootSubnetInput{Name: "rack1", CIDR: "10.9.0.0/24", Gateway: "10.9.0.1", DynamicStart: "10.9.0.100", DynamicEnd: "10.9.0.150"})
		if err != nil {
			t.Fatal(err)
		}
		lease, err := s.Lease(ctx, sn.ID, "52:54:00:00:0b:01", netip.Addr{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}

		tok := deploying(t, s, m, "metal", true)
		for name, bad := range map[string]string{"empty": "", "unknown": "nope", "hash itself": strings.Repeat("0", 64)} {
			if _, err := s.AgentDeployPlan(ctx, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s token: %v", name, err)
			}
		}
		p, err := s.AgentDeployPlan(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Hostname != "node-1" || p.Disk != "sda" || p.ImageURL != img.SourceURL || p.SHA256 != strings.Repeat("c", 64) ||
			!strings.HasPrefix(p.InstanceID, m.ID+"-") || !slices.Equal(p.SSHKeys, []string{staff, prov}) {
			t.Errorf("plan = %+v", p)
		}
		// Fetching the plan does not spend the token.
		if _, err := s.AgentDeployPlan(ctx, tok); err != nil {
			t.Errorf("second fetch: %v", err)
		}

		// A malformed host key refuses the report and changes nothing.
		if _, err := s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "deploy", OK: true, SSHHostKey: "ssh-ed25519 garbage"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad host key: %v", err)
		}
		if d, _ := s.GetMachine(ctx, m.ID); d.State != store.MachineDeploying || d.HostID != "" {
			t.Fatalf("after a refused report: %s host %q", d.State, d.HostID)
		}

		hostKey := newPub(t, "root@node-1")
		agentLog := "level=INFO msg=\"image written\" disk=/dev/sda\nlevel=INFO msg=\"cloud-init seed written\" partition=sda1"
		got, err := s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "deploy", OK: true, SSHHostKey: hostKey, Deployed: "sda", Log: agentLog + "\x00"})
		if err != nil {
			t.Fatal(err)
		}
		bare := strings.TrimSuffix(hostKey, " root@node-1")
		if got.State != store.MachineDeployed || got.SSHHostKey != bare || got.HostID == "" {
			t.Fatalf("deployed machine = %s key %q host %q", got.State, got.SSHHostKey, got.HostID)
		}
		h, err := s.GetHost(ctx, got.HostID)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "node-1" || h.URI != "qemu+ssh://debian@"+lease.IP.String()+"/system" || h.SSHHostKey != bare || h.State != store.HostNew {
			t.Errorf("host = %+v", h.Host)
		}
		if _, err := s.AgentDeployPlan(ctx, tok); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("plan after the report: %v", err)
		}
		d, _ := s.GetMachine(ctx, m.ID)
		if last := d.Events[len(d.Events)-1]; !strings.Contains(last.Message, "registered as KVM host node-1") || last.Detail != agentLog {
			t.Errorf("last event: %+v", last)
		}

		// While it is a host, a release is refused; once the host is gone, the
		// release forgets the system's host key and the link.
		_, err = s.MachineAction(ctx, staffActor, m.ID, store.MachineRelease, store.MachineActionInput{})
		if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrConflict) || !strings.Contains(e.Message, "delete that host") {
			t.Fatalf("release of a host: %v", err)
		}
		if err := s.DeleteHost(ctx, staffActor, got.HostID); err != nil {
			t.Fatal(err)
		}
		act(t, s, m.ID, store.MachineRelease, store.MachineActionInput{})
		rtok, _ := s.IssueAgentToken(ctx, m.ID)
		if r, err := s.AgentReportResult(ctx, rtok, store.AgentResult{Mode: "release", OK: true}); err != nil || r.SSHHostKey != "" || r.DeployKVMHost || r.HostID != "" {
			t.Fatalf("release: %+v %v", r, err)
		}
		// A host of the same name blocks another KVM host deploy.
		if _, err := s.CreateHost(ctx, staffActor, store.HostInput{Name: "node-1", URI: "qemu+ssh://root@10.9.0.200/system"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MachineAction(ctx, staffActor, m.ID, store.MachineDeploy, store.MachineActionInput{ImageID: img.ID, Disk: "sda", KVMHost: true}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("kvm deploy over an existing host name: %v", err)
		}

		// Without an address the deploy stands, unregistered, with the reason.
		m2 := enlist(t, s, "node-2", "52:54:00:00:0b:02")
		commissioned(t, s, m2.ID)
		tok2 := deploying(t, s, m2, "metal", true)
		got2, err := s.AgentReportResult(ctx, tok2, store.AgentResult{Mode: "deploy", OK: true, SSHHostKey: newPub(t, "x")})
		if err != nil {
			t.Fatal(err)
		}
		if got2.State != store.MachineDeployed || got2.HostID != "" || !strings.Contains(got2.LastError, "no DHCP lease") {
			t.Errorf("deploy without lease: %s host %q error %q", got2.State, got2.HostID, got2.LastError)
		}
		if _, err := s.GetHost(ctx, "node-2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("host node-2: %v", err)
		}
	})
}

func TestReleaseErase(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		machineImage(t, s, "metal")
		m := enlist(t, s, "node-e", "52:54:00:00:0e:01")
		commissioned(t, s, m.ID)
		tok := deploying(t, s, m, "metal", false)
		if _, err := s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "deploy", OK: true, SSHHostKey: newPub(t, "k")}); err != nil {
			t.Fatal(err)
		}
		got := act(t, s, m.ID, store.MachineRelease, store.MachineActionInput{Erase: true})
		if !got.ReleaseErase {
			t.Fatal("release did not record the erase")
		}
		if b, _ := s.BootState(ctx, "52:54:00:00:0e:01"); b.State != store.MachineReleasing || !b.Erase {
			t.Errorf("boot state = %+v", b)
		}
		rtok, err := s.IssueAgentToken(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A release that was to erase but erased nothing is refused.
		if _, err := s.AgentReportResult(ctx, rtok, store.AgentResult{Mode: "release", OK: true}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("release without wiped disks: %v", err)
		}
		if d, _ := s.GetMachine(ctx, m.ID); d.State != store.MachineReleasing {
			t.Fatalf("refused report moved the machine to %s", d.State)
		}
		r, err := s.AgentReportResult(ctx, rtok, store.AgentResult{Mode: "release", OK: true, Wiped: []string{"sdb", "sda"}})
		if err != nil || r.State != store.MachineReady || r.ReleaseErase || r.SSHHostKey != "" {
			t.Fatalf("release: %+v %v", r, err)
		}
		d, _ := s.GetMachine(ctx, m.ID)
		if last := d.Events[len(d.Events)-1]; last.Kind != store.EventDiskErased || last.Message != "disk erased: sda, sdb" {
			t.Errorf("last event %+v", last)
		}
		var sawReason bool
		for _, ev := range d.Events {
			sawReason = sawReason || strings.HasPrefix(ev.Message, "release and erase the disks, requested by ")
		}
		if !sawReason {
			t.Errorf("no release-and-erase transition on the timeline: %+v", d.Events)
		}
	})
}
