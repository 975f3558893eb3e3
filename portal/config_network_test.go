package portal

import "testing"

func TestConfigNetworkEdge(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Config
		want Config // the fields checked, after defaults
		ok   bool
	}{
		{"defaults", Config{}, Config{ForwardPortMin: 20000, ForwardPortMax: 20999, GatewayAddress: "127.0.0.1:2222", PublicAddress: "127.0.0.1"}, true},
		{"given", Config{ForwardPortMin: 30000, ForwardPortMax: 30009, GatewayAddress: " ssh.isp.example ", PublicAddress: "203.0.113.7"},
			Config{ForwardPortMin: 30000, ForwardPortMax: 30009, GatewayAddress: "ssh.isp.example", PublicAddress: "203.0.113.7"}, true},
		{"ipv6 public address", Config{PublicAddress: "2001:db8::1"}, Config{ForwardPortMin: 20000, ForwardPortMax: 20999, GatewayAddress: "127.0.0.1:2222", PublicAddress: "2001:db8::1"}, true},
		{"inverted range", Config{ForwardPortMin: 21000, ForwardPortMax: 20000}, Config{}, false},
		{"only max", Config{ForwardPortMax: 20000}, Config{}, false},
		{"port too high", Config{ForwardPortMin: 60000, ForwardPortMax: 70000}, Config{}, false},
		{"gateway with user", Config{GatewayAddress: "root@gw"}, Config{}, false},
		{"public address with port", Config{PublicAddress: "isp.example:80"}, Config{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if c.ForwardPortMin != tc.want.ForwardPortMin || c.ForwardPortMax != tc.want.ForwardPortMax ||
				c.GatewayAddress != tc.want.GatewayAddress || c.PublicAddress != tc.want.PublicAddress {
				t.Errorf("got %d–%d %q %q", c.ForwardPortMin, c.ForwardPortMax, c.GatewayAddress, c.PublicAddress)
			}
		})
	}
}
