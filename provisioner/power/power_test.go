package power

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewValidates(t *testing.T) {
	ipmi := func(kv ...string) map[string]string {
		m := map[string]string{"address": "10.0.0.5", "username": "admin"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{"ipmi defaults", Config{Type: "ipmi", Params: ipmi(), Secret: "pw"}, ""},
		{"ipmi lan", Config{Type: "ipmi", Params: ipmi("interface", "lan", "port", "6230", "timeout", "3"), Secret: "pw"}, ""},
		{"ipmi suite 17", Config{Type: "ipmi", Params: ipmi("cipher_suite", "17"), Secret: "pw"}, ""},
		{"ipmi no address", Config{Type: "ipmi", Params: ipmi("address", ""), Secret: "pw"}, "ipmi: address is required"},
		{"ipmi address with port", Config{Type: "ipmi", Params: ipmi("address", "10.0.0.5:623"), Secret: "pw"}, "ipmi: address"},
		{"ipmi no username", Config{Type: "ipmi", Params: ipmi("username", ""), Secret: "pw"}, "ipmi: username is required"},
		{"ipmi long username", Config{Type: "ipmi", Params: ipmi("username", strings.Repeat("u", 17)), Secret: "pw"}, "ipmi: username"},
		{"ipmi no password", Config{Type: "ipmi", Params: ipmi()}, "ipmi: password is required"},
		{"ipmi password as param", Config{Type: "ipmi", Params: ipmi("password", "pw"), Secret: "pw"}, "ipmi: password must not be a parameter"},
		{"ipmi password too long for lan", Config{Type: "ipmi", Params: ipmi("interface", "lan"), Secret: strings.Repeat("p", 17)}, "ipmi: password is longer than the 16 characters"},
		{"ipmi password too long for lanplus", Config{Type: "ipmi", Params: ipmi(), Secret: strings.Repeat("p", 21)}, "ipmi: password is longer than the 20 characters"},
		{"ipmi bad port", Config{Type: "ipmi", Params: ipmi("port", "70000"), Secret: "pw"}, "ipmi: port"},
		{"ipmi bad interface", Config{Type: "ipmi", Params: ipmi("interface", "usb"), Secret: "pw"}, "ipmi: interface"},
		{"ipmi suite 4", Config{Type: "ipmi", Params: ipmi("cipher_suite", "4"), Secret: "pw"}, "ipmi: cipher_suite"},
		{"ipmi suite on lan", Config{Type: "ipmi", Params: ipmi("interface", "lan", "cipher_suite", "3"), Secret: "pw"}, "ipmi: cipher_suite applies to interface lanplus only"},
		{"ipmi bad timeout", Config{Type: "ipmi", Params: ipmi("timeout", "soon"), Secret: "pw"}, "ipmi: timeout"},
		{"ipmi misspelt param", Config{Type: "ipmi", Params: ipmi("usernmae", "x"), Secret: "pw"}, "unknown parameter usernmae"},
		{"wol", Config{Type: "wol", Params: map[string]string{"mac": "52:54:00:12:34:56"}}, ""},
		{"wol no mac", Config{Type: "wol"}, "wol: mac is required"},
		{"wol bad mac", Config{Type: "wol", Params: map[string]string{"mac": "52:54:00"}}, "wol: mac"},
		{"wol bad broadcast", Config{Type: "wol", Params: map[string]string{"mac": "52:54:00:12:34:56", "broadcast": "lan"}}, "wol: broadcast"},
		{"virsh", Config{Type: "virsh", Params: map[string]string{"uri": "qemu:///system", "domain": "node1"}}, ""},
		{"virsh no domain", Config{Type: "virsh", Params: map[string]string{"uri": "qemu:///system"}}, "virsh: domain is required"},
		{"virsh remote", Config{Type: "virsh", Params: map[string]string{"uri": "qemu+ssh://root@h/system", "domain": "n"}}, "virsh: uri"},
		{"manual", Config{Type: "manual"}, ""},
		{"manual confirmed", Config{Type: "manual", Params: map[string]string{"confirmed_state": "on"}}, ""},
		{"manual bad state", Config{Type: "manual", Params: map[string]string{"confirmed_state": "maybe"}}, "manual: confirmed_state"},
		{"no type", Config{}, "type is empty"},
		{"unknown type", Config{Type: "redfish"}, `type "redfish" is unknown`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.cfg, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c, ok := d.(io.Closer); ok {
					c.Close()
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New = %v; want ErrInvalid containing %q", err, tc.wantErr)
			}
			if tc.cfg.Secret != "" && strings.Contains(err.Error(), tc.cfg.Secret) && tc.cfg.Secret != "pw" {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// TestCapabilities pins which driver offers what.
func TestCapabilities(t *testing.T) {
	caps := func(d Stater) []string {
		var c []string
		if _, ok := d.(OnOffer); ok {
			c = append(c, "onoff")
		}
		if _, ok := d.(Cycler); ok {
			c = append(c, "cycle")
		}
		if _, ok := d.(SoftOffer); ok {
			c = append(c, "softoff")
		}
		if _, ok := d.(BootDeviceSetter); ok {
			c = append(c, "bootdev")
		}
		if _, ok := d.(SensorReader); ok {
			c = append(c, "sensors")
		}
		return c
	}
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Type: "ipmi", Params: map[string]string{"address": "h", "username": "u"}, Secret: "p"}, []string{"onoff", "cycle", "softoff", "bootdev", "sensors"}},
		{Config{Type: "wol", Params: map[string]string{"mac": "52:54:00:12:34:56"}}, []string{"onoff"}},
		{Config{Type: "virsh", Params: map[string]string{"uri": "test:///default", "domain": "d"}}, []string{"onoff", "cycle", "softoff"}},
		{Config{Type: "manual"}, []string{"onoff"}},
	} {
		d, err := New(tc.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, caps(d)); diff != "" {
			t.Errorf("%s capabilities (-want +got):\n%s", tc.cfg.Type, diff)
		}
	}
}

func TestWOL(t *testing.T) {
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.LocalAddr().(*net.UDPAddr).Port
	d, err := New(Config{Type: "wol", Params: map[string]string{
		"mac": "52:54:00:ab:cd:ef", "broadcast": "127.0.0.1:" + strconv.Itoa(port)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if st, err := d.PowerState(ctx); st != Unknown || err != nil {
		t.Errorf("PowerState = %s, %v; want unknown", st, err)
	}
	if err := d.(OnOffer).PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := l.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for range 16 {
		want = append(want, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef)
	}
	if diff := cmp.Diff(want, buf[:n]); diff != "" {
		t.Errorf("magic packet (-want +got):\n%s", diff)
	}
	var m *ErrManual
	if err := d.(OnOffer).PowerOff(ctx); !errors.As(err, &m) {
		t.Errorf("PowerOff = %v; want ErrManual", err)
	}
}

func TestManual(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		confirmed string
		want      State
	}{{"", Unknown}, {"on", On}, {"off", Off}, {"unknown", Unknown}} {
		d, err := New(Config{Type: "manual", Params: map[string]string{"confirmed_state": tc.confirmed}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := d.PowerState(ctx); st != tc.want || err != nil {
			t.Errorf("confirmed %q: PowerState = %s, %v; want %s", tc.confirmed, st, err, tc.want)
		}
		for name, f := range map[string]func(context.Context) error{"on": d.(OnOffer).PowerOn, "off": d.(OnOffer).PowerOff} {
			var m *ErrManual
			err := f(ctx)
			if !errors.As(err, &m) || m.Action != "power "+name || !strings.Contains(err.Error(), "by hand") {
				t.Errorf("power %s = %v; want ErrManual asking to power %s by hand", name, err, name)
			}
		}
	}
}
