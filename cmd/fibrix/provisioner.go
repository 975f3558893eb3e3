package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/provisioner/engine"
	"github.com/fibrixcloud/fibrix/provisioner/fleet"
	"github.com/fibrixcloud/fibrix/provisioner/lifecycle"
	"github.com/fibrixcloud/fibrix/provisioner/metadata"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// provisionerFlags are the settings of the provisioner role of serve.
type provisionerFlags struct {
	metadataListen string
	metadataURL    string
	workers        int
	domainType     string
	sshKey         string
	discovery      time.Duration
	watch          time.Duration
	shutdown       time.Duration
	anySource      bool
	consoleLogDir  string
	metering       time.Duration
	metrics        time.Duration
}

func (p *provisionerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.metadataListen, "metadata-listen", "127.0.0.1:8775", "address of the cloud-init metadata service; guests must reach it (e.g. the VM bridge's address)")
	fs.StringVar(&p.metadataURL, "metadata-url", "", "URL guests use for the metadata service (default: http://<metadata-listen>)")
	fs.IntVar(&p.workers, "workers", 4, "provisioner workers in this process")
	fs.StringVar(&p.domainType, "domain-type", "qemu", "libvirt domain type: kvm (hardware virtualisation) or qemu (software emulation)")
	fs.StringVar(&p.sshKey, "ssh-key", "", "private key for qemu+ssh:// hosts (default: <data-dir>/ssh/id_ed25519, created on first start)")
	fs.DurationVar(&p.discovery, "discovery-interval", time.Minute, "how often VM hosts are re-inventoried")
	fs.DurationVar(&p.watch, "watch-interval", 30*time.Second, "how often a running VM is compared with its domain")
	fs.DurationVar(&p.shutdown, "shutdown-timeout", time.Minute, "how long a guest may take to power off before it is forced")
	fs.StringVar(&p.consoleLogDir, "console-log-dir", "/var/log/libvirt/qemu", "directory on the VM hosts for each VM's serial console log (empty: none)")
	fs.DurationVar(&p.metering, "metering-interval", 15*time.Minute, "how often usage records are turned into billed hours and amounts")
	fs.DurationVar(&p.metrics, "metrics-interval", time.Minute, "how often the CPU, memory, disk and network use of VMs is sampled for their graphs (0: never)")
	fs.BoolVar(&p.anySource, "metadata-any-source", false, "serve metadata to any source address (only when guests reach it through NAT)")
}

// startProvisioner runs the work engine, host discovery and the metadata
// service in g.
func startProvisioner(ctx context.Context, g *errgroup.Group, st *store.Store, p provisionerFlags, dataDir, zone string, log *slog.Logger) error {
	if p.metering < time.Minute {
		return fmt.Errorf("--metering-interval %s: at least 1m", p.metering)
	}
	if p.metrics < 0 || p.metrics > 0 && p.metrics < time.Second {
		return fmt.Errorf("--metrics-interval %s: at least 1s, or 0 to sample nothing", p.metrics)
	}
	if p.consoleLogDir != "" {
		if !path.IsAbs(p.consoleLogDir) {
			return fmt.Errorf("--console-log-dir %q: want an absolute path on the VM hosts (or empty for none)", p.consoleLogDir)
		}
		p.consoleLogDir = path.Clean(p.consoleLogDir)
	}
	signer, pub, err := clientKey(p.sshKey, dataDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", p.metadataListen)
	if err != nil {
		return fmt.Errorf("metadata service: listen on %s: %w", p.metadataListen, err)
	}
	mdURL := p.metadataURL
	if mdURL == "" {
		mdURL = "http://" + ln.Addr().String()
	}
	md, err := metadata.New(metadata.Config{Listen: p.metadataListen, Zone: zone, DefaultUser: "debian", AllowAnySource: p.anySource}, st, log)
	if err != nil {
		ln.Close()
		return err
	}
	pool := fleet.NewPool(signer)
	owner := engineOwner()
	rec, err := lifecycle.New(st, pool, &lifecycle.ImageCache{Dir: filepath.Join(dataDir, "images")}, lifecycle.Config{
		MetadataURL: mdURL, DomainType: p.domainType, ShutdownTimeout: p.shutdown, WatchInterval: p.watch,
		ConsoleLogDir: p.consoleLogDir,
	}, owner, log.With("component", "lifecycle"))
	if err != nil {
		ln.Close()
		return err
	}
	eng := engine.New(st, rec, engine.Config{Workers: p.workers, Owner: owner}, log.With("component", "engine"))
	disc := fleet.NewDiscoverer(st, pool, fleet.DiscoveryConfig{Interval: p.discovery, ConsoleLogDir: p.consoleLogDir}, log.With("component", "discovery"))
	if err := st.SetSetting(ctx, store.SettingProvisionerSSHKey, pub); err != nil {
		ln.Close()
		return err
	}
	g.Go(func() error { return md.Serve(ctx, ln) })
	g.Go(func() error { return eng.Serve(ctx) })
	g.Go(func() error { return disc.Serve(ctx) })
	g.Go(func() error { return meterLoop(ctx, st, p.metering, log.With("component", "metering")) })
	if p.metrics > 0 {
		sampler := fleet.NewSampler(st, pool, p.metrics, log.With("component", "metrics"))
		g.Go(func() error { return sampler.Serve(ctx) })
	}
	log.Info("provisioner running", "metadata", mdURL, "workers", p.workers, "domain_type", p.domainType, "ssh_public_key", pub)
	return nil
}

func engineOwner() string {
	h, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%x", h, os.Getpid(), b)
}

// clientKey loads the provisioner's SSH client key, creating it on first
// start; the public half is what staff authorise on qemu+ssh hosts.
func clientKey(path, dataDir string) (ssh.Signer, string, error) {
	if path == "" {
		path = filepath.Join(dataDir, "ssh", "id_ed25519")
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, "", gerr
		}
		block, merr := ssh.MarshalPrivateKey(priv, "fibrix provisioner")
		if merr != nil {
			return nil, "", merr
		}
		raw = pem.EncodeToMemory(block)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			return nil, "", err
		}
	} else if err != nil {
		return nil, "", fmt.Errorf("read ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		return nil, "", fmt.Errorf("ssh key %s: %w", path, err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " fibrix-provisioner", nil
}
