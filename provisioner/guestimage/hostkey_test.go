package guestimage_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/guestimage"
)

func TestParseHostKeys(t *testing.T) {
	const ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICID+V4IQRY2RZFIC6Oy6zooOXzCl1NXeEGoYJt7KQXD"
	const ec = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmfbP0l+Nbg="
	tests := []struct {
		name   string
		serial string
		want   []string
	}{
		{
			name: "cloud-init block with CRLF and comments",
			serial: "[  52.1] cloud-init[408]: Cloud-init v. 22.4.2 running 'modules:final'\r\n" +
				"<14>Nov 21 06:11:54 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n" +
				"<14>Nov 21 06:11:54 cloud-init: 256 SHA256:abc root@probe-vm (ED25519)\r\n" +
				"<14>Nov 21 06:11:55 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----\r\n" +
				"-----BEGIN SSH HOST KEY KEYS-----\r\n" + ec + " root@probe-vm\r\n" + ed + " root@probe-vm\r\n" +
				"-----END SSH HOST KEY KEYS-----\r\n",
			want: []string{ec, ed},
		},
		{
			name:   "block not finished yet",
			serial: "-----BEGIN SSH HOST KEY KEYS-----\n" + ed + " root@probe-vm\n",
		},
		{
			name:   "fingerprints only",
			serial: "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:abc root@probe-vm (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n",
		},
		{
			name: "systemd line interleaved",
			serial: "-----BEGIN SSH HOST KEY KEYS-----\n" + ed + " root@probe-vm\n" +
				"[  OK  ] Finished cloud-final.service\n-----END SSH HOST KEY KEYS-----\n",
			want: []string{ed},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "serial.log")
			if err := os.WriteFile(path, []byte(tc.serial), 0o644); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, guestimage.HostKeys(path)); diff != "" {
				t.Errorf("host keys (-want +got):\n%s", diff)
			}
		})
	}
}
