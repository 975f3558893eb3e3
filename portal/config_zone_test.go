package portal

import "testing"

func TestConfigZone(t *testing.T) {
	for _, tc := range []struct {
		name, zone, want string
		ok               bool
	}{
		{"default", "", "cloud.internal", true},
		{"trimmed and lowered", " Cloud.Example.NET. ", "cloud.example.net", true},
		{"bad label", "under_score.example", "", false},
		{"empty label", "a..b", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Zone: tc.zone}
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if tc.ok && c.Zone != tc.want {
				t.Errorf("zone %q, want %q", c.Zone, tc.want)
			}
		})
	}
}
