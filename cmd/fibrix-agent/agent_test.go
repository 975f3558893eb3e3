package main

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"typical", "BOOT_IMAGE=/vmlinuz console=ttyS0 panic=-1 fibrix.mode=commission fibrix.url=http://10.0.2.2:8080 fibrix.token=T quiet\n",
			map[string]string{"BOOT_IMAGE": "/vmlinuz", "console": "ttyS0", "panic": "-1", "fibrix.mode": "commission",
				"fibrix.url": "http://10.0.2.2:8080", "fibrix.token": "T", "quiet": ""}},
		{"quoted", `a="b c" d=e`, map[string]string{"a": "b c", "d": "e"}},
		{"value with equals", "fibrix.url=http://r/?x=1", map[string]string{"fibrix.url": "http://r/?x=1"}},
		{"tabs and repeats", "x=1\tx=2", map[string]string{"x": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseCmdline(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(cmdline, []byte("console=ttyS0 fibrix.mode=release fibrix.url=http://r:1/ fibrix.token=T fibrix.mac=52:54:00:00:00:01 fibrix.wipe=quick\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr string
	}{
		{"from cmdline", []string{"-cmdline", cmdline},
			config{mode: "release", url: "http://r:1", token: "T", mac: "52:54:00:00:00:01", wipe: true, root: "/", devDir: "/dev", retryFor: 2 * time.Minute, power: true}, ""},
		{"flags win", []string{"-cmdline", cmdline, "-mode", "commission", "-token", "U", "-no-power", "-wipe", "none", "-retry-for", "5s"},
			config{mode: "commission", url: "http://r:1", token: "U", mac: "52:54:00:00:00:01", root: "/", devDir: "/dev", retryFor: 5 * time.Second}, ""},
		{"no cmdline", []string{"-cmdline", "", "-mode", "deploy", "-url", "http://r", "-token", "T"},
			config{mode: "deploy", url: "http://r", token: "T", root: "/", devDir: "/dev", retryFor: 2 * time.Minute, power: true}, ""},
		{"unknown mode", []string{"-cmdline", "", "-mode", "rescue", "-url", "http://r", "-token", "T"}, config{}, "fibrix.mode"},
		{"no token", []string{"-cmdline", "", "-mode", "deploy", "-url", "http://r"}, config{}, "token"},
		{"bad url", []string{"-cmdline", "", "-mode", "deploy", "-url", "r:80", "-token", "T"}, config{}, "fibrix.url"},
		{"bad wipe", []string{"-cmdline", cmdline, "-wipe", "full"}, config{}, "fibrix.wipe"},
		{"missing file", []string{"-cmdline", "/nonexistent/cmdline"}, config{}, "command line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags = %v, want error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// region is a fake of the region's agent API recording the reports it gets.
type region struct {
	mu       sync.Mutex
	reports  []inventory.Report
	failures int    // answer 503 to this many reports first
	status   int    // then answer this (204 when 0)
	token    string // the deploy plan's token ("T" when empty)
	plan     inventory.DeployPlan
	image    []byte
	// firstReport is when the first report arrived (boot timings).
	firstReport time.Time
}

func (r *region) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.URL.Path {
	case inventory.ReportPath:
		if r.firstReport.IsZero() {
			r.firstReport = time.Now()
		}
		if r.failures > 0 {
			r.failures--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var rep inventory.Report
		if err := json.NewDecoder(req.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.reports = append(r.reports, rep)
		if r.status != 0 {
			http.Error(w, "no", r.status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case inventory.DeployPath:
		want := r.token
		if want == "" {
			want = "T"
		}
		if req.URL.Query().Get("token") != want {
			http.Error(w, "bad token", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(r.plan)
	case "/image":
		_, _ = w.Write(r.image)
	default:
		http.NotFound(w, req)
	}
}

func (r *region) got() []inventory.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]inventory.Report(nil), r.reports...)
}

func newAgent(t *testing.T, url, mode string) (*agent, *bytes.Buffer, *bytes.Buffer) {
	var log, console bytes.Buffer
	tail := newLogTail(inventory.MaxLogLines)
	return &agent{
		cfg: config{mode: mode, url: url, token: "T", mac: "52:54:00:12:34:56", root: "../../provisioner/inventory/testdata/vm",
			devDir: t.TempDir(), retryFor: 10 * time.Second},
		log:     slog.New(slog.NewTextHandler(io.MultiWriter(&log, tail), nil)),
		tail:    tail,
		http:    &http.Client{Timeout: 5 * time.Second},
		stream:  &http.Client{},
		parts:   &dirPartitions{names: []string{"vda1"}, dirs: map[string]string{"vda1": osTree(t)}},
		console: &console,
	}, &log, &console
}

func TestCommission(t *testing.T) {
	reg := &region{failures: 2}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	a, log, console := newAgent(t, srv.URL, inventory.ModeCommission)
	after, err := a.run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if after == nil {
		t.Error("no power action after commissioning")
	}
	reps := reg.got()
	if len(reps) != 1 {
		t.Fatalf("region got %d reports, want 1", len(reps))
	}
	want, _ := inventory.Collect(a.cfg.root)
	// The report carries what was logged before it was sent.
	if len(reps[0].Log) != 1 || !strings.Contains(reps[0].Log[0], `msg="inventory collected"`) || !strings.Contains(reps[0].Log[0], "cores=2") {
		t.Errorf("report log = %q", reps[0].Log)
	}
	if diff := cmp.Diff(inventory.Report{Token: "T", MAC: "52:54:00:12:34:56", Mode: "commission", Status: "ok", Inventory: &want, Log: reps[0].Log}, reps[0]); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if err := inventory.Validate(reps[0]); err != nil {
		t.Errorf("report does not validate: %v", err)
	}
	if !strings.Contains(console.String(), "FIBRIX-AGENT: commissioning reported\n") {
		t.Errorf("console lacks the marker: %q", console.String())
	}
	if !strings.Contains(log.String(), "retrying") || !strings.Contains(log.String(), "DISK123") {
		t.Errorf("log lacks the retries or the report:\n%s", log.String())
	}
	if strings.Contains(log.String(), `\"token\":\"T\"`) || strings.Contains(log.String(), "token=T") {
		t.Errorf("log shows the token:\n%s", log.String())
	}
}

func TestReportPermanentFailure(t *testing.T) {
	srv := httptest.NewServer(&region{status: http.StatusForbidden})
	defer srv.Close()
	a, _, console := newAgent(t, srv.URL, inventory.ModeCommission)
	start := time.Now()
	if _, err := a.run(t.Context()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("run = %v, want the 403", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 403 was retried for %v", d)
	}
	if strings.Contains(console.String(), "reported") {
		t.Errorf("console claims success: %q", console.String())
	}
}

func TestReportGivesUp(t *testing.T) {
	srv := httptest.NewServer(&region{failures: 1000})
	defer srv.Close()
	a, _, _ := newAgent(t, srv.URL, inventory.ModeCommission)
	a.cfg.retryFor = 2 * time.Second
	if _, err := a.run(t.Context()); err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Fatalf("run = %v, want giving up", err)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDeploy(t *testing.T) {
	raw := make([]byte, 3<<20+123)
	_, _ = rand.Read(raw[:1<<20])
	copy(raw[2<<20:], bytes.Repeat([]byte("fibrix "), 1000))
	tests := []struct {
		name     string
		served   []byte
		sha      string
		wantOK   bool
		wantDisk []byte
	}{
		{"raw", raw, sum(raw), true, raw},
		{"gzip", gzipped(t, raw), sum(gzipped(t, raw)), true, raw},
		{"checksum mismatch", raw, sum([]byte("other")), false, raw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := &region{image: tt.served}
			srv := httptest.NewServer(reg)
			defer srv.Close()
			reg.plan = inventory.DeployPlan{ImageURL: srv.URL + "/image", SHA256: tt.sha, Disk: "/dev/vda",
				InstanceID: "m1-1763712000", Hostname: "node1", SSHKeys: []string{"ssh-ed25519 AAAA staff"}}
			a, log, console := newAgent(t, srv.URL, inventory.ModeDeploy)
			disk := filepath.Join(a.cfg.devDir, "vda")
			// Old contents past the image stay: a deploy writes, it does not wipe.
			if err := os.WriteFile(disk, bytes.Repeat([]byte{0xee}, 4<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			after, err := a.run(t.Context())
			reps := reg.got()
			if len(reps) != 1 {
				t.Fatalf("region got %d reports, want 1 (run: %v)", len(reps), err)
			}
			got, rerr := os.ReadFile(disk)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !bytes.Equal(got[:len(tt.wantDisk)], tt.wantDisk) || got[len(got)-1] != 0xee {
				t.Error("disk contents differ from the image")
			}
			if strings.Contains(log.String(), "token=T") {
				t.Errorf("log shows the token:\n%s", log.String())
			}
			if strings.Contains(log.String(), "PRIVATE KEY") {
				t.Errorf("log shows the private key:\n%s", log.String())
			}
			parts := a.parts.(*dirPartitions)
			if !tt.wantOK {
				if err == nil || after != nil {
					t.Fatalf("run = %v with a power action, want a failure and no reboot", err)
				}
				if len(parts.got()) != 0 {
					t.Errorf("a bad image was mounted: %v", parts.got())
				}
				if reps[0].Status != "failed" || !strings.Contains(reps[0].Message, "checksum mismatch") {
					t.Errorf("report %+v, want a failed one about the checksum", reps[0])
				}
				return
			}
			if err != nil || after == nil {
				t.Fatalf("run = %v (power action %v)", err, after != nil)
			}
			if reps[0].Deploy == nil {
				t.Fatalf("report %+v without a deploy result", reps[0])
			}
			hostKey := reps[0].Deploy.SSHHostKey
			want := inventory.Report{Token: "T", MAC: "52:54:00:12:34:56", Mode: "deploy", Status: "ok",
				Deploy: &inventory.DeployResult{Disk: "vda", BytesWritten: int64(len(raw)), SHA256: tt.sha, SeedPartition: "vda1", SSHHostKey: hostKey}}
			if diff := cmp.Diff(want, reps[0], cmpopts.IgnoreFields(inventory.Report{}, "Log")); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if err := inventory.Validate(reps[0]); err != nil {
				t.Errorf("report does not validate: %v", err)
			}
			if log := strings.Join(reps[0].Log, "\n"); !strings.Contains(log, `msg="image written"`) || !strings.Contains(log, `msg="cloud-init seed written"`) {
				t.Errorf("report log lacks the image and seed lines: %q", reps[0].Log)
			}
			checkSeed(t, parts.dirs["vda1"], reg.plan, hostKey)
			if !strings.Contains(console.String(), "FIBRIX-AGENT: deploy reported") {
				t.Errorf("console lacks the marker: %q", console.String())
			}
		})
	}
}

func TestDeployBadToken(t *testing.T) {
	srv := httptest.NewServer(&region{})
	defer srv.Close()
	a, log, _ := newAgent(t, srv.URL, inventory.ModeDeploy)
	a.cfg.token = "wrong-secret"
	if _, err := a.run(t.Context()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("run = %v, want 403", err)
	}
	if strings.Contains(log.String(), "wrong-secret") {
		t.Errorf("log shows the token:\n%s", log.String())
	}
}

func TestRelease(t *testing.T) {
	reg := &region{}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	a, _, console := newAgent(t, srv.URL, inventory.ModeRelease)
	a.cfg.wipe = true
	disk := filepath.Join(a.cfg.devDir, "vda") // the vm tree's only disk
	old := bytes.Repeat([]byte{0xaa}, 40<<20)
	if err := os.WriteFile(disk, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, wipeSpan)
	if !bytes.Equal(got[:wipeSpan], zero) || !bytes.Equal(got[len(got)-wipeSpan:], zero) {
		t.Error("ends of the disk not zeroed")
	}
	if !bytes.Equal(got[wipeSpan:len(got)-wipeSpan], old[wipeSpan:len(old)-wipeSpan]) {
		t.Error("middle of the disk changed")
	}
	want := []inventory.Report{{Token: "T", MAC: "52:54:00:12:34:56", Mode: "release", Status: "ok", Wiped: []string{"vda"}}}
	if diff := cmp.Diff(want, reg.got(), cmpopts.IgnoreFields(inventory.Report{}, "Log")); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	} else if log := reg.got()[0].Log; len(log) != 1 || !strings.Contains(log[0], `msg="quick wipe done" disk=vda`) {
		t.Errorf("release report log = %q", log)
	}
	if !strings.Contains(console.String(), "FIBRIX-AGENT: release reported") {
		t.Errorf("console lacks the marker: %q", console.String())
	}
}

func TestQuickWipeSmallDisk(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "sdb")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{1}, 5<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := quickWipe(disk); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(disk)
	if !bytes.Equal(got, make([]byte, 5<<20)) {
		t.Error("small disk not zeroed entirely")
	}
}
