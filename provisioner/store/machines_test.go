package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

var staffActor = store.Actor{UserID: "staff-1", Email: "ops@isp.example", IP: "192.0.2.9"}

func enlist(t *testing.T, s *store.Store, name string, macs ...string) store.Machine {
	t.Helper()
	m, err := s.EnlistMachine(context.Background(), staffActor, store.MachineInput{Name: name, MACs: macs, PowerType: "ipmi",
		PowerParams: map[string]string{"address": "10.0.0.5", "user": "admin"}, PowerSecretSealed: "sealed:opaque"})
	if err != nil {
		t.Fatalf("enlist %s: %v", name, err)
	}
	return m
}

func act(t *testing.T, s *store.Store, id, action string, in store.MachineActionInput) store.Machine {
	t.Helper()
	m, err := s.MachineAction(context.Background(), staffActor, id, action, in)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return m
}

const inventoryJSON = `{"cpu":{"model":"EPYC","cores":8,"threads":16},"memory_mib":65536,"disks":[{"name":"sda","size_bytes":1000204886016}],"nics":[{"name":"eth0","mac":"52:54:00:00:00:01","link":true}],"bmc":{"present":true}}`

// commissioned drives a machine through commissioning with a real report.
func commissioned(t *testing.T, s *store.Store, id string) store.Machine {
	t.Helper()
	ctx := context.Background()
	act(t, s, id, store.MachineCommission, store.MachineActionInput{})
	tok, err := s.IssueAgentToken(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.AgentReport(ctx, tok, "commission", inventoryJSON, "EPYC", 8, 65536)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEnlistMachineValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "Node-1", "52-54-00-AA-BB-01", "52:54:00:aa:bb:02", "52:54:00:aa:bb:01")
		if m.Name != "node-1" || m.State != store.MachineNew || m.PowerParams != `{"address":"10.0.0.5","user":"admin"}` || m.PowerSecret != "sealed:opaque" {
			t.Errorf("enlisted: %+v", m)
		}
		d, err := s.GetMachine(ctx, "node-1")
		if err != nil {
			t.Fatal(err)
		}
		var macs []string
		for _, mm := range d.MACs {
			macs = append(macs, fmt.Sprintf("%s boot=%v", mm.MAC, mm.Boot))
		}
		if diff := cmp.Diff([]string{"52:54:00:aa:bb:01 boot=true", "52:54:00:aa:bb:02 boot=false"}, macs); diff != "" {
			t.Errorf("macs (-want +got):\n%s", diff)
		}
		if len(d.Events) != 1 || d.Events[0].Kind != store.EventEnlisted {
			t.Errorf("events: %+v", d.Events)
		}
		ipmi := map[string]string{"address": "10.0.0.6"}
		for _, tc := range []struct {
			name  string
			in    store.MachineInput
			kind  error
			field string
			msg   string
		}{
			{"bad name", store.MachineInput{Name: "no spaces", MACs: []string{"52:54:00:00:00:09"}}, store.ErrInvalid, "name", ""},
			{"no mac", store.MachineInput{Name: "n2"}, store.ErrInvalid, "macs", ""},
			{"bad mac", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:zz"}}, store.ErrInvalid, "macs", "52:54:00:zz"},
			{"eui-64 mac", store.MachineInput{Name: "n2", MACs: []string{"02:00:5e:10:00:00:00:01"}}, store.ErrInvalid, "macs", ""},
			{"duplicate mac", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:AA:BB:02"}}, store.ErrConflict, "macs", "node-1"},
			{"duplicate name", store.MachineInput{Name: "NODE-1", MACs: []string{"52:54:00:00:00:09"}}, store.ErrConflict, "name", ""},
			{"unknown power", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:00:00:09"}, PowerType: "redfish"}, store.ErrInvalid, "power_type", ""},
			{"ipmi without address", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:00:00:09"}, PowerType: "ipmi"}, store.ErrInvalid, "power_params", "address"},
			{"password as parameter", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:00:00:09"}, PowerType: "ipmi",
				PowerParams: map[string]string{"address": "x", "password": "hunter2"}}, store.ErrInvalid, "power_params", ""},
			{"bad param name", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:00:00:09"}, PowerType: "ipmi",
				PowerParams: map[string]string{"address": "x", "Bad Key": "1"}}, store.ErrInvalid, "power_params", ""},
			{"param with newline", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:00:00:09"}, PowerType: "ipmi",
				PowerParams: map[string]string{"address": "x\ny"}}, store.ErrInvalid, "power_params", ""},
			{"wol without mac", store.MachineInput{Name: "n2", MACs: []string{"52:54:00:00:00:09"}, PowerType: "wol", PowerParams: ipmi}, store.ErrInvalid, "power_params", "mac"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.EnlistMachine(ctx, staffActor, tc.in)
				e, ok := store.AsError(err)
				if !ok || !errors.Is(err, tc.kind) || e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
					t.Errorf("got %v (%+v), want %v field %q mentioning %q", err, e, tc.kind, tc.field, tc.msg)
				}
			})
		}
		if _, total, err := s.ListMachines(ctx, store.Page{}, ""); err != nil || total != 1 {
			t.Errorf("machines after refusals: %d, %v", total, err)
		}
		// Refusals are audited as failures, the enlistment as a success.
		fails, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "machine.enlist", Result: store.ResultFailure}, store.Page{PerPage: 100})
		if err != nil || len(fails) != 12 {
			t.Errorf("failed audit entries: %d, %v", len(fails), err)
		}
	})
}

func TestMachineLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		img, err := s.CreateImage(ctx, staffActor, store.ImageInput{Name: "debian-12", OS: "Debian", Version: "12",
			SourceURL: "https://images.example.com/d.raw", Checksum: "sha256:" + strings.Repeat("1", 64), Kind: store.ImageMachine, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		m := enlist(t, s, "node-1", "52:54:00:00:00:01")

		// Refusals name the states.
		for _, tc := range []struct {
			action string
			in     store.MachineActionInput
			kind   error
			field  string
			msg    string
		}{
			{store.MachineDeploy, store.MachineActionInput{ImageID: img.ID, Disk: "sda"}, store.ErrInvalidTransition, "", "it is new; deploy is possible only from ready"},
			{store.MachineRelease, store.MachineActionInput{}, store.ErrInvalidTransition, "", "only from deployed or failed_deployment"},
			{store.MachineMarkFixed, store.MachineActionInput{}, store.ErrInvalidTransition, "", "only from broken"},
			{store.MachineExitRescue, store.MachineActionInput{}, store.ErrInvalidTransition, "", "only from rescue"},
			{store.MachineMarkBroken, store.MachineActionInput{}, store.ErrInvalid, "reason", ""},
			{"explode", store.MachineActionInput{}, store.ErrInvalid, "type", ""},
		} {
			t.Run("refuse "+tc.action, func(t *testing.T) {
				_, err := s.MachineAction(ctx, staffActor, m.ID, tc.action, tc.in)
				e, ok := store.AsError(err)
				if !ok || !errors.Is(err, tc.kind) || e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
					t.Errorf("got %v (%+v), want %v %q", err, e, tc.kind, tc.msg)
				}
			})
		}
		if _, err := s.IssueAgentToken(ctx, m.ID); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("token for a new machine: %v", err)
		}

		// Power requests are events, not transitions.
		if got := act(t, s, m.ID, store.MachinePowerOn, store.MachineActionInput{Reason: "check fans"}); got.State != store.MachineNew {
			t.Errorf("power on changed the state: %s", got.State)
		}

		// Commissioning with a one-time token.
		act(t, s, m.ID, store.MachineCommission, store.MachineActionInput{Reason: "first look"})
		old, err := s.IssueAgentToken(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.IssueAgentToken(ctx, m.ID)
		if err != nil || tok == old || len(tok) < 40 {
			t.Fatalf("reissue: %q %v", tok, err)
		}
		if d, _ := s.GetMachine(ctx, m.ID); d.AgentTokenHash == "" || strings.Contains(d.AgentTokenHash, tok) {
			t.Errorf("stored token %q", d.AgentTokenHash)
		}
		for name, call := range map[string]func() error{
			"replaced token": func() error {
				_, err := s.AgentReport(ctx, old, "commission", inventoryJSON, "EPYC", 8, 65536)
				return err
			},
			"wrong token": func() error {
				_, err := s.AgentReport(ctx, "nope", "commission", inventoryJSON, "EPYC", 8, 65536)
				return err
			},
			"empty token": func() error {
				_, err := s.AgentReport(ctx, "", "commission", inventoryJSON, "EPYC", 8, 65536)
				return err
			},
			"wrong mode": func() error { _, err := s.AgentReport(ctx, tok, "deploy", "", "", 0, 0); return err },
		} {
			if err := call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: %v, want not found", name, err)
			}
		}
		if _, err := s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "commission", OK: true, MAC: "52:54:00:99:99:99", Inventory: inventoryJSON}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("foreign mac: %v", err)
		}
		got, err := s.AgentReport(ctx, tok, "commission", inventoryJSON, "EPYC", 8, 65536)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.MachineReady || got.Cores != 8 || got.MemoryMiB != 65536 || got.CPUModel != "EPYC" || got.Inventory != inventoryJSON || got.AgentTokenHash != "" {
			t.Errorf("after report: %+v", got)
		}
		if _, err := s.AgentReport(ctx, tok, "commission", inventoryJSON, "EPYC", 8, 65536); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token used twice: %v", err)
		}

		// Deploy needs an image and one of the machine's disks.
		for _, tc := range []struct {
			name, field string
			in          store.MachineActionInput
		}{
			{"no image", "image", store.MachineActionInput{Disk: "sda"}},
			{"unknown image", "image", store.MachineActionInput{ImageID: "nope", Disk: "sda"}},
			{"no disk", "disk", store.MachineActionInput{ImageID: img.ID}},
			{"bad disk", "disk", store.MachineActionInput{ImageID: img.ID, Disk: "../sda"}},
			{"absent disk", "disk", store.MachineActionInput{ImageID: img.ID, Disk: "sdz"}},
		} {
			t.Run("deploy "+tc.name, func(t *testing.T) {
				_, err := s.MachineAction(ctx, staffActor, m.ID, store.MachineDeploy, tc.in)
				if e, ok := store.AsError(err); !ok || !errors.Is(err, store.ErrInvalid) || e.Field != tc.field {
					t.Errorf("got %v, want invalid %s", err, tc.field)
				}
			})
		}
		got = act(t, s, m.ID, store.MachineDeploy, store.MachineActionInput{ImageID: "debian-12", Disk: "/dev/sda"})
		if got.State != store.MachineDeploying || got.DeployImageID != img.ID || got.DeployDisk != "sda" {
			t.Errorf("deploying: %+v", got)
		}
		if err := s.DeleteMachine(ctx, staffActor, m.ID); !errors.Is(err, store.ErrInvalidTransition) {
			t.Errorf("delete while deploying: %v", err)
		}
		tok, _ = s.IssueAgentToken(ctx, m.ID)
		if got, err = s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "deploy", OK: true, MAC: "52:54:00:00:00:01", Deployed: "sda, 2 GiB written"}); err != nil || got.State != store.MachineDeployed {
			t.Fatalf("deploy report: %v %+v", err, got)
		}

		// Rescue returns to where it came from.
		act(t, s, m.ID, store.MachineEnterRescue, store.MachineActionInput{Reason: "fsck"})
		if got = act(t, s, m.ID, store.MachineExitRescue, store.MachineActionInput{}); got.State != store.MachineDeployed {
			t.Errorf("exit rescue: %s", got.State)
		}

		// Release with a disk erase.
		act(t, s, m.ID, store.MachineRelease, store.MachineActionInput{Reason: "customer left"})
		tok, _ = s.IssueAgentToken(ctx, m.ID)
		if got, err = s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "release", OK: true, Wiped: []string{"sdb", "sda"}}); err != nil || got.State != store.MachineReady || got.DeployDisk != "" {
			t.Fatalf("release report: %v %+v", err, got)
		}

		// Broken and fixed: back to ready because it has an inventory.
		act(t, s, m.ID, store.MachineMarkBroken, store.MachineActionInput{Reason: "PSU smells"})
		if got = act(t, s, m.ID, store.MachineMarkFixed, store.MachineActionInput{Reason: "new PSU"}); got.State != store.MachineReady {
			t.Errorf("fixed: %s", got.State)
		}
		// A machine never commissioned goes back to new.
		n2 := enlist(t, s, "node-2", "52:54:00:00:00:02")
		act(t, s, n2.ID, store.MachineMarkBroken, store.MachineActionInput{Reason: "dead"})
		if got = act(t, s, n2.ID, store.MachineMarkFixed, store.MachineActionInput{}); got.State != store.MachineNew {
			t.Errorf("fixed uncommissioned: %s", got.State)
		}

		d, err := s.GetMachine(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var timeline []string
		for _, ev := range d.Events {
			timeline = append(timeline, fmt.Sprintf("%s %s>%s %s", ev.Kind, ev.FromState, ev.ToState, ev.Message))
		}
		want := []string{
			"enlisted >new enlisted by ops@isp.example",
			"power_requested > power on requested by ops@isp.example: check fans",
			"transition new>commissioning first look",
			"transition commissioning>ready commissioned: 8 cores, 64 GiB",
			"transition ready>deploying deploy debian-12 to sda",
			"transition deploying>deployed deployed: sda, 2 GiB written",
			"transition deployed>rescue fsck",
			"transition rescue>deployed exit rescue requested by ops@isp.example",
			"transition deployed>releasing customer left",
			"transition releasing>ready released",
			"disk_erased > disk erased: sda, sdb",
			"transition ready>broken PSU smells",
			"transition broken>ready new PSU",
		}
		if diff := cmp.Diff(want, timeline); diff != "" {
			t.Errorf("timeline (-want +got):\n%s", diff)
		}
		// Every staff transition has its audit entry.
		entries, _, err := s.ListAudit(ctx, store.AuditFilter{Action: "machine.", Result: store.ResultSuccess}, store.Page{PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, e := range entries {
			n[e.Action]++
		}
		if n["machine.commission"] != 1 || n["machine.deploy"] != 1 || n["machine.agent_report"] != 3 || n["machine.mark_broken"] != 2 || n["machine.power_on"] != 1 {
			t.Errorf("audit: %v", n)
		}

		// Deleting a ready machine removes its MACs, so they can be enlisted again.
		if err := s.DeleteMachine(ctx, staffActor, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetMachine(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after delete: %v", err)
		}
		enlist(t, s, "node-1b", "52:54:00:00:00:01")
	})
}

func TestMachineAgentFailureAndTimeouts(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := enlist(t, s, "a", "52:54:00:00:01:01")
		b := enlist(t, s, "b", "52:54:00:00:01:02")
		c := commissioned(t, s, enlist(t, s, "c", "52:54:00:00:01:03").ID)
		act(t, s, a.ID, store.MachineCommission, store.MachineActionInput{})
		act(t, s, b.ID, store.MachineCommission, store.MachineActionInput{})
		tok, _ := s.IssueAgentToken(ctx, b.ID)
		got, err := s.AgentReportResult(ctx, tok, store.AgentResult{Mode: "commission", Message: "no disks found"})
		if err != nil || got.State != store.MachineFailedCommissioning || got.LastError != "commission failed: no disks found" {
			t.Errorf("failed report: %v %+v", err, got)
		}
		act(t, s, c.ID, store.MachineEnterRescue, store.MachineActionInput{})

		// Nothing is stale yet.
		if n, err := s.ExpireStaleMachines(ctx, time.Now(), time.Hour, time.Hour, time.Hour); err != nil || n != 0 {
			t.Errorf("fresh: %d %v", n, err)
		}
		n, err := s.ExpireStaleMachines(ctx, time.Now().Add(2*time.Hour), time.Hour, 0, time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("expire: %d %v", n, err)
		}
		d, _ := s.GetMachine(ctx, a.ID)
		last := d.Events[len(d.Events)-1]
		if d.State != store.MachineFailedCommissioning || last.Message != "commissioning timed out after 1h0m0s" || d.LastError == "" {
			t.Errorf("expired: %s %+v", d.State, last)
		}
		if d, _ := s.GetMachine(ctx, c.ID); d.State != store.MachineRescue {
			t.Errorf("rescue is not timed: %s", d.State)
		}
		// Failed commissioning may be retried.
		act(t, s, a.ID, store.MachineCommission, store.MachineActionInput{Reason: "retry"})
	})
}

func TestMachineDiscoveryAndBootState(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "known", "52:54:00:00:02:01")
		for _, mac := range []string{"52:54:00:00:02:02", "52:54:00:00:02:03"} {
			if err := s.RecordDiscovered(ctx, mac, "", "PXEClient:Arch:00007", 7, ""); err != nil {
				t.Fatal(err)
			}
		}
		l, total, err := s.ListDiscovered(ctx, store.Page{})
		if err != nil || total != 2 || len(l) != 2 || l[0].Arch != 7 {
			t.Fatalf("discovered: %d %+v %v", total, l, err)
		}
		if _, err := s.EnlistDiscovered(ctx, staffActor, "52:54:00:00:02:09", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("enlist unknown: %v", err)
		}
		if _, err := s.EnlistDiscovered(ctx, staffActor, "52:54:00:00:02:02", "Bad Name"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("enlist bad name: %v", err)
		}
		if _, err := s.EnlistDiscovered(ctx, staffActor, "52:54:00:00:02:02", "known"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("enlist taken name: %v", err)
		}
		n, err := s.EnlistDiscovered(ctx, staffActor, "52-54-00-00-02-02", "found")
		if err != nil || n.PowerType != store.PowerManual || n.State != store.MachineNew {
			t.Fatalf("enlist discovered: %v %+v", err, n)
		}
		if l, total, _ := s.ListDiscovered(ctx, store.Page{}); total != 1 || l[0].MAC != "52:54:00:00:02:03" {
			t.Errorf("discovered after enlist: %+v", l)
		}
		for _, tc := range []struct {
			mac  string
			want store.MachineBootState
		}{
			{"52:54:00:00:02:01", store.MachineBootState{Known: true, MachineID: m.ID, Name: "known", State: "new"}},
			{"52:54:00:00:02:02", store.MachineBootState{Known: true, MachineID: n.ID, Name: "found", State: "new"}},
			{"52:54:00:00:02:03", store.MachineBootState{}},
		} {
			got, err := s.BootState(ctx, tc.mac)
			if diff := cmp.Diff(tc.want, got); diff != "" || err != nil {
				t.Errorf("%s: %v (-want +got):\n%s", tc.mac, err, diff)
			}
		}
	})
}

// TestAgentTokenOnce races reports with the same token: exactly one wins.
func TestAgentTokenOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "race", "52:54:00:00:03:01")
		act(t, s, m.ID, store.MachineCommission, store.MachineActionInput{})
		tok, err := s.IssueAgentToken(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ok, bad int
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.AgentReport(ctx, tok, "commission", inventoryJSON, "EPYC", 8, 65536)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else if errors.Is(err, store.ErrNotFound) {
					bad++
				} else {
					t.Errorf("report: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 || bad != 7 {
			t.Errorf("%d reports accepted, %d refused; want 1 and 7", ok, bad)
		}
		d, _ := s.GetMachine(ctx, m.ID)
		if n := len(d.Events); n != 3 {
			t.Errorf("%d events, want enlisted, commission, ready", n)
		}
	})
}
