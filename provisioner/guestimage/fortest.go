package guestimage

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// buildTimeout bounds a test's image build; a cold one takes a few minutes.
const buildTimeout = 20 * time.Minute

// Packages names the Debian packages the build needs, for messages and CI.
const Packages = "mmdebstrap e2fsprogs qemu-utils"

// ForTest returns the guest image for a test, building it into CacheDir on
// first use. Without the build tools or root it skips the test, or fails it
// when the environment variable CI is set.
func ForTest(t testing.TB) Image {
	t.Helper()
	var missing []string
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	switch {
	case len(missing) > 0:
		unavailable(t, "guest image build needs "+strings.Join(missing, ", ")+
			" (apt-get install --no-install-recommends "+Packages+")")
	case os.Geteuid() != 0:
		unavailable(t, "guest image build needs root (mmdebstrap --mode=root)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	img, err := Build(ctx, CacheDir(), log)
	if err != nil {
		t.Fatalf("build guest image: %v", err)
	}
	return img
}

func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
