package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestPinHostKey(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		h, err := s.CreateHost(ctx, store.Actor{}, store.HostInput{Name: "pinned", URI: "qemu+ssh://root@192.0.2.9/system"})
		if err != nil {
			t.Fatal(err)
		}
		const first, other = "ssh-ed25519 AAAAfirst", "ssh-ed25519 AAAAother"
		if err := s.PinHostKey(ctx, h.ID, first); err != nil {
			t.Fatal(err)
		}
		if err := s.PinHostKey(ctx, h.ID, first); err != nil {
			t.Errorf("same key again: %v", err)
		}
		if err := s.PinHostKey(ctx, h.ID, other); !errors.Is(err, store.ErrConflict) {
			t.Errorf("different key: %v, want a conflict", err)
		}
		if err := s.RecordHostFacts(ctx, h.ID, store.Facts{Cores: 4, MemoryMiB: 4096, DiskGiB: 10, DiskFreeGiB: 10}, other); !errors.Is(err, store.ErrConflict) {
			t.Errorf("facts with a different key: %v, want a conflict", err)
		}
		got, _ := s.GetHost(ctx, h.ID)
		if got.SSHHostKey != first {
			t.Errorf("pinned key now %q", got.SSHHostKey)
		}
	})
}

func TestSettings(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if v, err := s.Setting(ctx, store.SettingProvisionerSSHKey); err != nil || v != "" {
			t.Fatalf("unset setting: %q %v", v, err)
		}
		for _, want := range []string{"ssh-ed25519 AAAAone fibrix-provisioner", "ssh-ed25519 AAAAtwo fibrix-provisioner"} {
			if err := s.SetSetting(ctx, store.SettingProvisionerSSHKey, want); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Setting(ctx, store.SettingProvisionerSSHKey); err != nil || v != want {
				t.Errorf("setting = %q %v, want %q", v, err, want)
			}
		}
	})
}
