package netboot_test

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/netboot"
)

// ipxeCommands are the first words our scripts' lines may start with.
var ipxeCommands = map[string]bool{
	"#!ipxe": true, "#": true, "echo": true, "kernel": true, "initrd": true, "boot": true,
	":failed": true, "sleep": true, "chain": true, "iseq": true, "sanboot": true, ":exit": true, "exit": true,
}

// scriptShape is the number of words on each line: a value that smuggled
// in whitespace or a line break changes it.
func scriptShape(script string) []int {
	var shape []int
	for line := range strings.Lines(script) {
		shape = append(shape, len(strings.Fields(line)))
	}
	return shape
}

// render asks the handler for mac's script with the machine given.
func render(t *testing.T, base, mac string, b netboot.Boot) (int, string) {
	t.Helper()
	m := &machines{boots: map[string]netboot.Boot{}}
	if hw, err := net.ParseMAC(mac); err == nil {
		m.boots[hw.String()] = b
	}
	rec := get(t, netboot.New(netboot.Config{BaseURL: base}, m, nil), "/boot/ipxe/"+url.PathEscape(mac))
	return rec.Code, rec.Body.String()
}

func FuzzScript(f *testing.F) {
	for _, s := range []struct {
		base, mac, name, state, token string
		known, erase                  bool
	}{
		{baseURL, "52:54:00:12:34:56", "rack1-node1", "commissioning", token, true, false},
		{baseURL + "/", "52-54-00-12-34-56", "rack1-node1", "releasing", token, true, true},
		{"https://boot.example.com:8443/boot", "52:54:00:12:34:56", "n", "deploying", "", true, false},
		{baseURL, "52:54:00:12:34:56", "n", "rescue", token, true, false},
		{baseURL, "52:54:00:12:34:56", "n", "ready", "", true, false},
		{baseURL, "52:54:00:12:34:56", "", "", "", false, false},
		{baseURL, "52:54:00:12:34:56", "evil\nshell\n", "ready\nshell\n", "x\nshell", true, false},
		{baseURL, "52:54:00:12:34:56", "a ${x} || shell #", "deploying", "t ok", true, false},
		{baseURL, "52:54:00:12:34:56", "\r\nshell\r\n", "commissioning\nshell", "tok\x00", true, true},
		{baseURL + "\nshell", "52:54:00:12:34:56", "n", "deploying", token, true, false},
		{"http://h/b${x}", "52:54:00:12:34:56", "n", "deploying", token, true, false},
		{baseURL, "52:54:00:12:34:56\nshell", "n", "ready", "", true, false},
		{baseURL, "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "n", "ready", "", true, false},
		{baseURL, "", "n", "ready", "", true, false},
		{baseURL, "52:54:00:12:34:56", "名前\u2028\u0085x", "rescue", "", true, false},
		{baseURL, "52:54:00:12:34:56", "a\tb\vc\fd", "ready\t", "", true, false},
		{"http://0", "00:00:00:00:00:00", "", "", "", true, false},
	} {
		f.Add(s.base, s.mac, s.name, s.state, s.token, s.known, s.erase)
	}
	f.Fuzz(func(t *testing.T, base, mac, name, state, tok string, known, erase bool) {
		cfg := netboot.Config{BaseURL: base}
		if cfg.Validate() != nil {
			return
		}
		b := netboot.Boot{Known: known, MachineID: "m1", Name: name, State: state, AgentToken: tok, Erase: erase}
		code, body := render(t, cfg.BaseURL, mac, b)
		hw, macErr := net.ParseMAC(mac)
		switch {
		case mac == "":
			if code != http.StatusNotFound {
				t.Fatalf("empty MAC: status %d", code)
			}
			return
		case mac == "." || mac == ".." || strings.Contains(mac, "/"):
			// Not one path segment: the mux cleans the path and redirects,
			// or finds no route; either way no script and no server error.
			if code == http.StatusOK || code >= http.StatusInternalServerError {
				t.Fatalf("MAC %q: status %d, want a redirect or a 4xx", mac, code)
			}
			return
		case macErr != nil || len(hw) != 6:
			if code != http.StatusBadRequest {
				t.Fatalf("MAC %q: status %d, want 400", mac, code)
			}
			return
		case code == http.StatusInternalServerError && tok != "":
			// An unsafe token is refused rather than written into the script.
			if strings.ContainsFunc(tok, func(r rune) bool {
				return !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", r)
			}) {
				return
			}
			t.Fatalf("safe token %q refused", tok)
		case code != http.StatusOK:
			t.Fatalf("status %d: %s", code, body)
		}

		if !strings.HasPrefix(body, "#!ipxe\n") || !strings.HasSuffix(body, "\n") {
			t.Fatalf("not an iPXE script:\n%s", body)
		}
		for line := range strings.Lines(body) {
			words := strings.Fields(line)
			if len(words) == 0 || !ipxeCommands[words[0]] {
				t.Fatalf("line %q is not one of our commands:\n%s", line, body)
			}
			if strings.Contains(line, "\r") {
				t.Fatalf("carriage return in line %q", line)
			}
		}
		// Only the variables our scripts use are expanded by iPXE.
		rest := strings.NewReplacer("${mac}", "", "${platform}", "").Replace(body)
		if strings.ContainsAny(rest, "${}\"'\\") {
			t.Fatalf("iPXE expansion or quoting from a value:\n%s", body)
		}
		if !strings.Contains(body, hw.String()) {
			t.Fatalf("script lacks the MAC %s:\n%s", hw, body)
		}

		// A machine with tame values in the same lifecycle state gets a
		// script of the same shape.
		// An empty value is kept empty: it leaves a word out of its line.
		tame := b
		if name != "" {
			tame.Name = "n"
		}
		switch state {
		case "", "commissioning", "deploying", "releasing", "rescue":
		default:
			tame.State = "ready"
		}
		if tok != "" {
			tame.AgentToken = "t"
		}
		tcode, want := render(t, "http://h/boot", "52:54:00:00:00:01", tame)
		if tcode != http.StatusOK {
			t.Fatalf("tame machine: status %d", tcode)
		}
		gotShape, wantShape := scriptShape(body), scriptShape(want)
		if len(gotShape) != len(wantShape) {
			t.Fatalf("%d lines, want %d as for a tame machine:\n%s", len(gotShape), len(wantShape), body)
		}
		for i := range gotShape {
			if gotShape[i] != wantShape[i] {
				t.Fatalf("line %d has %d words, want %d as for a tame machine:\n%s", i+1, gotShape[i], wantShape[i], body)
			}
		}
		if strings.Contains(want, "fibrix.token=") && !strings.Contains(body, " fibrix.token="+tok+" ") {
			t.Fatalf("token %q not passed on as it is:\n%s", tok, body)
		}
	})
}
