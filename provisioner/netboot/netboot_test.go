package netboot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/netboot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	baseURL = "http://10.213.0.1:8080/boot"
	token   = "tok-3f9a1c7e5b2d4a6f8e0c"
)

// machines is a hand-written fake: boot states by MAC; "fail" MACs error.
type machines struct {
	boots map[string]netboot.Boot
	fail  string
	asked []string
}

func (m *machines) BootState(_ context.Context, mac string) (netboot.Boot, error) {
	m.asked = append(m.asked, mac)
	if mac == m.fail {
		return netboot.Boot{}, errors.New("database is down")
	}
	return m.boots[mac], nil
}

type fixture struct {
	h              *netboot.Handler
	m              *machines
	dir            string
	kernel, initrd []byte
	image          []byte
}

func write(t *testing.T, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"env", "images", "images/sub"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := fixture{dir: dir, m: &machines{boots: map[string]netboot.Boot{}}}
	f.kernel = write(t, filepath.Join(dir, "env", "vmlinuz-6.1"), 10000)
	f.initrd = write(t, filepath.Join(dir, "env", "initrd.cpio.gz"), 20000)
	f.image = write(t, filepath.Join(dir, "images", "debian-12.raw"), 100000)
	write(t, filepath.Join(dir, "secret"), 10)
	write(t, filepath.Join(dir, "env", "other"), 10)
	if err := os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "images", "escape")); err != nil {
		t.Fatal(err)
	}
	cfg := netboot.Config{
		BaseURL:    baseURL + "/",
		KernelPath: filepath.Join(dir, "env", "vmlinuz-6.1"),
		InitrdPath: filepath.Join(dir, "env", "initrd.cpio.gz"),
		ImageDir:   filepath.Join(dir, "images"),
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f.h = netboot.New(cfg, f.m, nil)
	return f
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestScripts pins every script variant with a golden file. The fake
// hands out a token in every state, so that the scripts show which states
// pass it on.
func TestScripts(t *testing.T) {
	tests := []struct {
		name  string
		state string // "" for a MAC no machine has
		// needsToken: the agent reports, so the token is on the command line.
		needsToken bool
		// erase is the machine's release setting; only a release wipes.
		erase bool
	}{
		{"commissioning", "commissioning", true, true},
		{"deploying", "deploying", true, true},
		{"releasing", "releasing", true, false},
		{"releasing_erase", "releasing", true, true},
		{"rescue", "rescue", false, true},
		{"ready", "ready", false, false},
		{"deployed", "deployed", false, false},
		{"new", "new", false, false},
		{"broken", "broken", false, false},
		{"failed_deployment", "failed_deployment", false, false},
		{"unknown", "", false, false},
	}
	f := newFixture(t)
	const mac = "52:54:00:12:34:56"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.state == "" {
				delete(f.m.boots, mac)
			} else {
				f.m.boots[mac] = netboot.Boot{Known: true, MachineID: "0197a5b2-node1", Name: "rack1-node1", State: tc.state, AgentToken: token, Erase: tc.erase}
			}
			rec := get(t, f.h, "/boot/ipxe/"+mac)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			got := rec.Body.String()
			if !strings.HasPrefix(got, "#!ipxe\n") {
				t.Errorf("script does not start with #!ipxe:\n%s", got)
			}
			if has := strings.Contains(got, token); has != tc.needsToken {
				t.Errorf("token in script = %v, want %v:\n%s", has, tc.needsToken, got)
			}
			if has := strings.Contains(got, "fibrix.wipe=quick"); has != (tc.name == "releasing_erase") {
				t.Errorf("wipe in script = %v:\n%s", has, got)
			}
			golden := filepath.Join("testdata", tc.name+".ipxe")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("script differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestScriptRequests(t *testing.T) {
	f := newFixture(t)
	f.m.boots["52:54:00:aa:bb:cc"] = netboot.Boot{Known: true, MachineID: "m1", Name: "n1", State: "deployed", AgentToken: token}
	f.m.boots["52:54:00:aa:bb:dd"] = netboot.Boot{Known: true, MachineID: "m2", Name: "n2", State: "commissioning", AgentToken: "bad token; $(x)"}
	f.m.boots["52:54:00:aa:bb:ee"] = netboot.Boot{Known: true, MachineID: "m3", Name: "evil ${x}\n#name", State: "ready"}
	f.m.fail = "52:54:00:00:00:01"
	tests := []struct {
		name     string
		path     string
		code     int
		contains []string
		absent   []string
	}{
		{"malformed MAC", "/boot/ipxe/not-a-mac", http.StatusBadRequest, []string{"malformed MAC"}, nil},
		{"short MAC", "/boot/ipxe/52:54:00:aa:bb", http.StatusBadRequest, nil, nil},
		{"64-bit EUI", "/boot/ipxe/52:54:00:aa:bb:cc:dd:ee", http.StatusBadRequest, nil, nil},
		{"upper case and dashes are normalized", "/boot/ipxe/52-54-00-AA-BB-CC", http.StatusOK,
			[]string{"sanboot --no-describe --drive 0x80", "exit"}, []string{token}},
		{"unknown MAC", "/boot/ipxe/02:00:00:00:00:99", http.StatusOK,
			[]string{"02:00:00:00:00:99 is not enlisted", "exit"}, []string{"kernel", "sanboot", "fibrix.token"}},
		{"lookup fails", "/boot/ipxe/52:54:00:00:00:01", http.StatusInternalServerError, []string{"internal error"}, []string{"database"}},
		{"unsafe token is not rendered", "/boot/ipxe/52:54:00:aa:bb:dd", http.StatusInternalServerError, nil, []string{"bad token"}},
		{"staff name cannot inject iPXE", "/boot/ipxe/52:54:00:aa:bb:ee", http.StatusOK, []string{"evil___x___name"}, []string{"${x}", "\n#name"}},
		{"no route", "/boot/other", http.StatusNotFound, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, f.h, tc.path)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			for _, s := range tc.contains {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body lacks %q:\n%s", s, rec.Body)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("body has %q:\n%s", s, rec.Body)
				}
			}
		})
	}
	if diff := cmp.Diff("52:54:00:aa:bb:cc", f.m.asked[0]); diff != "" {
		t.Errorf("MAC passed to Machines (-want +got):\n%s", diff)
	}
}

func TestFiles(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		path   string
		rng    string
		code   int
		want   []byte
		ranged string // Content-Range
	}{
		{"kernel", "/boot/files/vmlinuz", "", http.StatusOK, f.kernel, ""},
		{"initrd", "/boot/files/initrd.img", "", http.StatusOK, f.initrd, ""},
		{"initrd range", "/boot/files/initrd.img", "bytes=100-199", http.StatusPartialContent, f.initrd[100:200], "bytes 100-199/20000"},
		{"image", "/boot/images/debian-12.raw", "", http.StatusOK, f.image, ""},
		{"image range", "/boot/images/debian-12.raw", "bytes=99990-", http.StatusPartialContent, f.image[99990:], "bytes 99990-99999/100000"},
		{"image suffix range", "/boot/images/debian-12.raw", "bytes=-5", http.StatusPartialContent, f.image[99995:], "bytes 99995-99999/100000"},
		{"range beyond end", "/boot/images/debian-12.raw", "bytes=200000-", http.StatusRequestedRangeNotSatisfiable, nil, "bytes */100000"},
		{"other file next to the kernel", "/boot/files/other", "", http.StatusNotFound, nil, ""},
		{"configured file by its disk name", "/boot/files/vmlinuz-6.1", "", http.StatusNotFound, nil, ""},
		{"files traversal", "/boot/files/..%2Fsecret", "", http.StatusNotFound, nil, ""},
		{"missing image", "/boot/images/nope.raw", "", http.StatusNotFound, nil, ""},
		{"image subdirectory", "/boot/images/sub", "", http.StatusNotFound, nil, ""},
		{"image encoded slash", "/boot/images/..%2Fsecret", "", http.StatusForbidden, nil, ""},
		{"image encoded dot-dot", "/boot/images/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "", http.StatusForbidden, nil, ""},
		{"image backslash", "/boot/images/..%5Csecret", "", http.StatusForbidden, nil, ""},
		{"image NUL", "/boot/images/debian-12.raw%00", "", http.StatusForbidden, nil, ""},
		{"image symlink escaping", "/boot/images/escape", "", http.StatusForbidden, nil, ""},
		{"image into subdir", "/boot/images/sub%2Fx", "", http.StatusForbidden, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			rec := get(t, f.h, tc.path, hdr...)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %.200s", rec.Code, tc.code, rec.Body)
			}
			if tc.want != nil && !bytes.Equal(rec.Body.Bytes(), tc.want) {
				t.Errorf("body: %d bytes, want %d (content differs)", rec.Body.Len(), len(tc.want))
			}
			if got := rec.Header().Get("Content-Range"); got != tc.ranged {
				t.Errorf("Content-Range %q, want %q", got, tc.ranged)
			}
			if tc.code >= 400 && bytes.Contains(rec.Body.Bytes(), []byte(f.dir)) {
				t.Errorf("error names a path: %s", rec.Body)
			}
		})
	}
}

// TestOverHTTP fetches through a real server and client, and checks that
// the router's path cleaning does not let dot-dot through either.
func TestOverHTTP(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/boot/images/debian-12.raw", nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, f.image[10:20]) {
		t.Fatalf("range: %d %x", resp.StatusCode, body)
	}
	secret, err := os.ReadFile(filepath.Join(f.dir, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/boot/images/../../secret", "/boot/images/../files/vmlinuz/../../secret"} {
		// The client would clean the path itself; send it raw.
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.URL.Opaque = p
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || bytes.Equal(body, secret) {
			t.Errorf("%s: status %d, %d bytes", p, resp.StatusCode, len(body))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "k")
	write(t, file, 1)
	tests := []struct {
		name    string
		cfg     netboot.Config
		wantErr string
	}{
		{"ok", netboot.Config{BaseURL: baseURL, KernelPath: file, InitrdPath: file, ImageDir: dir}, ""},
		{"no scheme", netboot.Config{BaseURL: "10.213.0.1/boot"}, "must be http"},
		{"ftp", netboot.Config{BaseURL: "ftp://10.213.0.1/boot"}, "must be http"},
		{"query", netboot.Config{BaseURL: "http://10.213.0.1/boot?x=1"}, "must be http"},
		{"iPXE expansion", netboot.Config{BaseURL: "http://10.213.0.1/${x}"}, "iPXE would interpret"},
		{"missing kernel", netboot.Config{BaseURL: baseURL, KernelPath: filepath.Join(dir, "nope")}, "no such file"},
		{"kernel is a directory", netboot.Config{BaseURL: baseURL, KernelPath: dir}, "not a regular file"},
		{"image dir is a file", netboot.Config{BaseURL: baseURL, ImageDir: file}, "not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
