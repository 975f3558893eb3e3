// Command fibrix-agent runs inside the commissioning/deploy initramfs of a
// bare-metal machine: it reads its job from the kernel command line
// (fibrix.mode, fibrix.url, fibrix.token, fibrix.mac, fibrix.wipe), talks to
// the region's agent API, prints a marker line on the console and powers the
// machine off or reboots it. Flags override the command line for tests.
//
// Deploy images are raw disk images, optionally gzip-compressed (qcow2 is not
// supported) with a partition table and an ext4 root filesystem: they are
// streamed to the disk as they download, and their sha256 (over the file as
// served) is checked. The agent then finds the root filesystem (the ext4
// partition with an os-release file) and writes cloud-init's NoCloud seed
// there (instance id, hostname, SSH keys and a freshly generated ed25519
// host key, whose public half goes into the report) before it reports
// success and reboots. On any failure the agent reports it when the region
// is reachable, prints "FIBRIX-AGENT: <mode> failed: …" and exits non-zero
// without powering off or rebooting; the initramfs then leaves a console
// shell and the region's phase timeout takes over.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
)

// marker starts every line the region's tests and staff look for on the console.
const marker = "FIBRIX-AGENT: "

type config struct {
	mode, url, token, mac string
	wipe                  bool
	root                  string // where /proc and /sys are (Collect)
	devDir                string // where disk device nodes are
	retryFor              time.Duration
	power                 bool // power off / reboot at the end
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fibrix-agent:", err)
		os.Exit(2)
	}
	tail := newLogTail(inventory.MaxLogLines, cfg.token, url.QueryEscape(cfg.token))
	log := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, tail), nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &agent{cfg: cfg, log: log, http: &http.Client{Timeout: 30 * time.Second}, stream: &http.Client{},
		parts:   kernelPartitions{sysBlock: filepath.Join(cfg.root, "sys", "block"), devDir: cfg.devDir},
		console: os.Stdout, tail: tail}
	after, err := a.run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stdout, "%s%s failed: %v\n", marker, cfg.mode, err)
		os.Exit(1)
	}
	if !cfg.power || after == nil {
		return
	}
	if err := after(); err != nil {
		fmt.Fprintf(os.Stdout, "%spower action failed: %v\n", marker, err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("fibrix-agent", flag.ContinueOnError)
	cmdline := fs.String("cmdline", "/proc/cmdline", "kernel command line to read fibrix.* parameters from (\"\" for none)")
	mode := fs.String("mode", "", "commission | deploy | release (overrides fibrix.mode)")
	url := fs.String("url", "", "region base URL (overrides fibrix.url)")
	token := fs.String("token", "", "one-time token (overrides fibrix.token)")
	mac := fs.String("mac", "", "boot NIC MAC (overrides fibrix.mac)")
	wipe := fs.String("wipe", "", "release: quick | none (overrides fibrix.wipe)")
	fs.StringVar(&cfg.root, "root", "/", "root of the /proc and /sys trees to inventory")
	fs.StringVar(&cfg.devDir, "dev", "/dev", "directory holding disk device nodes")
	fs.DurationVar(&cfg.retryFor, "retry-for", 2*time.Minute, "how long to retry talking to the region")
	noPower := fs.Bool("no-power", false, "do not power off or reboot at the end (tests)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	params := map[string]string{}
	if *cmdline != "" {
		b, err := os.ReadFile(*cmdline)
		if err != nil {
			return cfg, fmt.Errorf("read kernel command line: %w", err)
		}
		params = parseCmdline(string(b))
	}
	pick := func(flagValue, key string) string {
		if flagValue != "" {
			return flagValue
		}
		return params[key]
	}
	cfg.mode = pick(*mode, "fibrix.mode")
	cfg.url = strings.TrimRight(pick(*url, "fibrix.url"), "/")
	cfg.token = pick(*token, "fibrix.token")
	cfg.mac = pick(*mac, "fibrix.mac")
	cfg.power = !*noPower
	switch w := pick(*wipe, "fibrix.wipe"); w {
	case "", "none", "0":
	case "quick", "1":
		cfg.wipe = true
	default:
		return cfg, fmt.Errorf("fibrix.wipe=%q: want quick or none", w)
	}
	switch cfg.mode {
	case inventory.ModeCommission, inventory.ModeDeploy, inventory.ModeRelease:
	default:
		return cfg, fmt.Errorf("fibrix.mode=%q: want commission, deploy or release", cfg.mode)
	}
	if !strings.HasPrefix(cfg.url, "http://") && !strings.HasPrefix(cfg.url, "https://") {
		return cfg, fmt.Errorf("fibrix.url=%q: want an http(s) URL", cfg.url)
	}
	if cfg.token == "" {
		return cfg, errors.New("fibrix.token is missing")
	}
	return cfg, nil
}

// parseCmdline splits a kernel command line into key=value parameters;
// double quotes group a value with spaces, as the kernel itself allows.
// Bare words map to "".
func parseCmdline(s string) map[string]string {
	out := map[string]string{}
	var word strings.Builder
	inQuote := false
	flush := func() {
		if word.Len() == 0 {
			return
		}
		k, v, _ := strings.Cut(word.String(), "=")
		out[k] = v
		word.Reset()
	}
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		default:
			word.WriteRune(r)
		}
	}
	flush()
	return out
}
