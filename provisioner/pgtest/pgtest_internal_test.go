package pgtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeBin(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBin(t *testing.T) {
	lib := t.TempDir()
	for _, v := range []string{"9.6", "15", "13"} {
		fakeBin(t, filepath.Join(lib, v, "bin"))
	}
	if err := os.MkdirAll(filepath.Join(lib, "16", "bin"), 0o755); err != nil { // no programs
		t.Fatal(err)
	}
	onPath := t.TempDir()
	fakeBin(t, onPath)
	libGlob := filepath.Join(lib, "*", "bin")
	none := filepath.Join(t.TempDir(), "*", "bin")

	t.Setenv("FIBRIX_PG_BIN", "")
	t.Setenv("PATH", onPath)
	if got, err := findBin(libGlob); err != nil || got != filepath.Join(lib, "15", "bin") {
		t.Errorf("findBin(lib) = %q, %v; want the 15 directory", got, err)
	}
	if got, err := findBin(none); err != nil || got != onPath {
		t.Errorf("findBin(PATH) = %q, %v; want %q", got, err, onPath)
	}

	env := filepath.Join(lib, "13", "bin")
	t.Setenv("FIBRIX_PG_BIN", env)
	if got, err := findBin(libGlob); err != nil || got != env {
		t.Errorf("findBin(FIBRIX_PG_BIN) = %q, %v; want %q", got, err, env)
	}
	t.Setenv("FIBRIX_PG_BIN", filepath.Join(lib, "16", "bin"))
	var notInstalled *notInstalledError
	if _, err := findBin(libGlob); err == nil || errors.As(err, &notInstalled) {
		t.Errorf("findBin(wrong FIBRIX_PG_BIN) error = %v; want a failure, not a skip", err)
	}

	t.Setenv("FIBRIX_PG_BIN", "")
	t.Setenv("PATH", t.TempDir())
	_, err := findBin(none)
	if !errors.As(err, &notInstalled) || !strings.HasPrefix(err.Error(), "PostgreSQL not installed: ") ||
		!strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("findBin(nothing) error = %v; want PostgreSQL not installed with a hint", err)
	}
}

func TestQuoteDSN(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/fibrix-pgtest-1": "/tmp/fibrix-pgtest-1",
		"/tmp/a b":             `'/tmp/a b'`,
		`it's\`:                `'it\'s\\'`,
		"":                     "''",
	} {
		if got := quoteDSN(in); got != want {
			t.Errorf("quoteDSN(%q) = %s, want %s", in, got, want)
		}
	}
}
