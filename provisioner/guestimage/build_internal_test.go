package guestimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeScript stands in for build.sh: it writes a tiny image into $1 after
// recording the run in runs and running extra (sleeps, failures).
func fakeScript(runs, extra string) []byte {
	return fmt.Appendf(nil, `set -eu
echo run >>%q
%s
printf disk >"$1/base.qcow2"; printf kernel >"$1/vmlinuz"; printf initrd >"$1/initrd.img"
printf metal | gzip -n >"$1/metal.img.gz"
(cd "$1" && sha256sum base.qcow2 vmlinuz initrd.img metal.img.gz >SHA256SUMS)
`, runs, extra)
}

func countRuns(t *testing.T, runs string) int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

// leftovers lists cache entries other than complete images and lock files.
func leftovers(t *testing.T, cache string) []string {
	t.Helper()
	ents, err := os.ReadDir(cache)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		if _, err := load(filepath.Join(cache, e.Name())); err == nil {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestBuildCache(t *testing.T) {
	tests := []struct {
		name     string
		extra    string
		callers  int
		timeout  time.Duration
		wantErr  bool
		wantRuns int
	}{
		{name: "built once then reused", callers: 1, wantRuns: 1},
		{name: "concurrent callers share one build", extra: "sleep 1", callers: 4, wantRuns: 1},
		{name: "failed build leaves nothing", extra: `printf half >"$1/base.qcow2"; exit 3`, callers: 1, wantErr: true, wantRuns: 1},
		{name: "incomplete build is not published", extra: `printf x >"$1/vmlinuz"; exit 0`, callers: 1, wantErr: true, wantRuns: 1},
		{
			name: "build without metal image is not published",
			extra: `printf disk >"$1/base.qcow2"; printf kernel >"$1/vmlinuz"; printf initrd >"$1/initrd.img"
(cd "$1" && sha256sum base.qcow2 vmlinuz initrd.img >SHA256SUMS); exit 0`,
			callers: 1, wantErr: true, wantRuns: 1,
		},
		{name: "cancelled build is killed", extra: "sleep 60", callers: 1, timeout: time.Second, wantErr: true, wantRuns: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cache := filepath.Join(dir, "cache")
			runs := filepath.Join(dir, "runs")
			script := fakeScript(runs, tc.extra)
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			imgs := make([]Image, tc.callers)
			errs := make([]error, tc.callers)
			var wg sync.WaitGroup
			for i := range tc.callers {
				wg.Go(func() { imgs[i], errs[i] = build(ctx, cache, script, discard()) })
			}
			wg.Wait()
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("build took %v", took)
			}
			for i, err := range errs {
				if (err != nil) != tc.wantErr {
					t.Fatalf("caller %d: err = %v, want error %v", i, err, tc.wantErr)
				}
				if err == nil && imgs[i] != imgs[0] {
					t.Errorf("caller %d got %+v, caller 0 %+v", i, imgs[i], imgs[0])
				}
			}
			if got := countRuns(t, runs); got != tc.wantRuns {
				t.Errorf("script ran %d times, want %d", got, tc.wantRuns)
			}
			if diff := cmp.Diff([]string(nil), leftovers(t, cache)); diff != "" {
				t.Errorf("cache leftovers (-want +got):\n%s", diff)
			}
			if tc.wantErr {
				return
			}
			if err := imgs[0].Verify(); err != nil {
				t.Errorf("verify: %v", err)
			}
			if got, err := fileSHA256(imgs[0].Metal); err != nil || got != imgs[0].MetalSHA256 {
				t.Errorf("metal image sha256 %q (%v), Image.MetalSHA256 %q", got, err, imgs[0].MetalSHA256)
			}
			// libvirt's QEMU runs as another user and must reach the base disk.
			if fi, err := os.Stat(imgs[0].Dir); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("image dir: %v, mode %v, want 0755", err, fi.Mode())
			}
			// A second call reuses the entry without running the script.
			again, err := build(t.Context(), cache, script, discard())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(imgs[0], again); diff != "" {
				t.Errorf("cached image differs (-first +again):\n%s", diff)
			}
			if got := countRuns(t, runs); got != tc.wantRuns {
				t.Errorf("script ran %d times after reuse, want %d", got, tc.wantRuns)
			}
		})
	}
}

func TestBuildRemovesStaleTemp(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	script := fakeScript(filepath.Join(dir, "runs"), "")
	img, err := build(t.Context(), cache, script, discard())
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a build killed mid-way for another script version of the same key.
	key := filepath.Base(img.Dir)
	if err := os.RemoveAll(img.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cache, key+".tmp-123", "half"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := build(t.Context(), cache, script, discard()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), leftovers(t, cache)); diff != "" {
		t.Errorf("cache leftovers (-want +got):\n%s", diff)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	for _, file := range []func(Image) string{
		func(img Image) string { return img.Initrd },
		func(img Image) string { return img.Metal },
	} {
		dir := t.TempDir()
		img, err := build(t.Context(), filepath.Join(dir, "cache"), fakeScript(filepath.Join(dir, "runs"), ""), discard())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file(img), []byte("rotten"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := img.Verify(); err == nil {
			t.Errorf("Verify accepted a changed %s", filepath.Base(file(img)))
		}
	}
}

func TestCacheDir(t *testing.T) {
	tests := []struct {
		name              string
		fibrix, xdg, home string
		want              string
	}{
		{name: "explicit", fibrix: "/srv/img", xdg: "/x", home: "/h", want: "/srv/img"},
		{name: "xdg", xdg: "/x", home: "/h", want: "/x/fibrix/images"},
		{name: "home", home: "/h", want: "/h/.cache/fibrix/images"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FIBRIX_IMAGE_CACHE", tc.fibrix)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			if diff := cmp.Diff(tc.want, CacheDir()); diff != "" {
				t.Errorf("CacheDir (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMountsUnder(t *testing.T) {
	if _, err := os.Stat("/proc/self/mounts"); err != nil {
		t.Skip("no /proc/self/mounts on this system")
	}
	if got := mountsUnder("/proc"); !slices.Contains(got, "/proc") {
		t.Errorf("mountsUnder(/proc) = %v, want it to include /proc", got)
	}
	if got := mountsUnder(t.TempDir()); len(got) != 0 {
		t.Errorf("mountsUnder(fresh temp dir) = %v, want none", got)
	}
}
