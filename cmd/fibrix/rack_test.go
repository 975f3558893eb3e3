package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestBootPlan(t *testing.T) {
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	for _, f := range []string{kernel, initrd} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ok := bootFlags{iface: "lo", tftpRoot: dir, kernel: kernel, initrd: initrd}
	with := func(f func(*bootFlags)) bootFlags { b := ok; f(&b); return b }
	tests := []struct {
		name    string
		flags   bootFlags
		wantErr string
		want    string // tftp http agent base, space-separated
	}{
		{name: "off", flags: bootFlags{}},
		{name: "defaults from the interface", flags: ok,
			want: "127.0.0.1:69 127.0.0.1:8082 http://127.0.0.1:8080 http://127.0.0.1:8082/boot"},
		{name: "explicit", flags: with(func(b *bootFlags) {
			b.serverIP, b.tftpListen, b.httpListen, b.agentURL = "127.0.0.1", "127.0.0.1:6969", "127.0.0.1:9000", "https://region.example/"
		}), want: "127.0.0.1:6969 127.0.0.1:9000 https://region.example http://127.0.0.1:9000/boot"},
		{name: "no such interface", flags: with(func(b *bootFlags) { b.iface = "fibrix-nope0" }),
			wantErr: `--boot-interface: there is no network interface "fibrix-nope0" on this machine`},
		{name: "server ip not on the interface", flags: with(func(b *bootFlags) { b.serverIP = "192.0.2.1" }),
			wantErr: "--boot-server-ip: 192.0.2.1 is not an address of lo"},
		{name: "server ip not IPv4", flags: with(func(b *bootFlags) { b.serverIP = "::1" }),
			wantErr: `--boot-server-ip: "::1" is not an IPv4 address`},
		{name: "wildcard http listen", flags: with(func(b *bootFlags) { b.httpListen = "0.0.0.0:8082" }),
			wantErr: "--boot-http-listen"},
		{name: "bad agent url", flags: with(func(b *bootFlags) { b.agentURL = "region:8080" }),
			wantErr: "--agent-url"},
		{name: "refresh too often", flags: with(func(b *bootFlags) { b.refresh = time.Millisecond }),
			wantErr: "--boot-subnet-refresh: 1ms is outside 1s–1h"},
		{name: "kernel missing", flags: with(func(b *bootFlags) { b.kernel = filepath.Join(dir, "nope") }),
			wantErr: "boot stack: netboot: kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.flags.plan("127.0.0.1:8080")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("plan error = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if p != nil {
				got = strings.Join([]string{p.tftpListen, p.httpListen, p.agentURL.String(), p.netboot.BaseURL}, " ")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeBootFlags checks serve refuses bad boot settings before it
// touches the database.
func TestServeBootFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"rack without interface", []string{"--roles", "rack"}, "--roles rack runs the PXE boot stack: set --boot-interface"},
		{"bad interface", []string{"--boot-interface", "fibrix-nope0"}, `there is no network interface "fibrix-nope0"`},
		{"bad role", []string{"--roles", "rack,dhcp"}, `unknown role "dhcp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			err := run(append([]string{"serve", "--data-dir", dir}, tt.args...), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("serve error = %v; want one containing %q", err, tt.wantErr)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("serve created the data dir before refusing its flags")
			}
		})
	}
}

// TestAgentRelay checks the boot service passes the agent's calls on to
// the portal's /api/agent/ paths, body and query intact.
func TestAgentRelay(t *testing.T) {
	type seen struct{ Method, Path, Query, Body string }
	var got []seen
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b)})
		w.WriteHeader(http.StatusAccepted)
	}))
	defer portal.Close()
	u, _ := url.Parse(portal.URL)
	relay := httptest.NewServer(agentRelay(u, slog.New(slog.DiscardHandler)))
	defer relay.Close()

	resp, err := http.Post(relay.URL+"/boot/api/agent/v1/report", "application/json", strings.NewReader(`{"token":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status = %d; want the portal's 202", resp.StatusCode)
	}
	resp, err = http.Get(relay.URL + "/boot/api/agent/v1/deploy?token=a%2Bb")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []seen{
		{"POST", "/api/agent/v1/report", "", `{"token":"t"}`},
		{"GET", "/api/agent/v1/deploy", "token=a%2Bb", ""},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("portal saw (-want +got):\n%s", diff)
	}
}
