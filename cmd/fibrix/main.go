// Command fibrix runs Fibrix Cloud: the customer portal, the staff panel and
// the JSON API in one process (more roles join as they are built), plus
// administrative helpers.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/portal"
	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Fibrix Cloud — sell virtual machines from your own rack.

Usage:
  fibrix serve [flags]                    run the portal, admin panel and API
  fibrix migrate [flags]                  apply database migrations and exit
  fibrix admin create-staff [flags]       add a staff account (--email, --password, --role)
  fibrix admin set-password [flags]       set a user's password (--email, --password)
  fibrix version                          print the version

Every flag can also be set with an environment variable FIBRIX_<FLAG> (dashes
become underscores), e.g. FIBRIX_LISTEN=0.0.0.0:8080. Flags win.
Run "fibrix <command> -h" for the flags of a command.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fibrix:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "migrate":
		return cmdMigrate(args[1:], stdout, stderr)
	case "admin":
		if len(args) < 2 {
			fmt.Fprint(stderr, usage)
			return errors.New("admin needs a subcommand")
		}
		switch args[1] {
		case "create-staff":
			return cmdCreateStaff(args[2:], stdout, stderr)
		case "set-password":
			return cmdSetPassword(args[2:], stdout, stderr)
		}
		return fmt.Errorf("unknown admin command %q", args[1])
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "fibrix", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// common are the settings every command shares.
type common struct {
	dataDir     string
	databaseURL string
	logLevel    string
	logFormat   string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "./var", "directory for the embedded database and other state")
	fs.StringVar(&c.databaseURL, "database-url", "", "PostgreSQL URL (postgres://…) or SQLite path (sqlite:PATH); default: SQLite in the data dir")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", c.logFormat)
}

func (c *common) url() string {
	if c.databaseURL != "" {
		return c.databaseURL
	}
	return "sqlite:" + filepath.Join(c.dataDir, "fibrix.db")
}

func (c *common) open(ctx context.Context, log *slog.Logger) (*store.Store, error) {
	if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return store.Open(ctx, c.url(), log)
}

// openCurrent opens the database for an admin command, which needs the
// current schema.
func (c *common) openCurrent(ctx context.Context, stderr io.Writer) (*store.Store, error) {
	log, err := c.logger(stderr)
	if err != nil {
		return nil, err
	}
	st, err := c.open(ctx, log)
	if err != nil {
		return nil, err
	}
	if err := st.CheckSchema(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// applyEnv sets every flag of fs that has an environment variable
// FIBRIX_<FLAG> (dashes as underscores) from it; the command line, parsed
// afterwards, wins. A value that does not parse is an error, not ignored.
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		key := "FIBRIX_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", key, v, serr)
			}
		}
	})
	return err
}

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the portal (HTTP)")
	publicURL := fs.String("public-url", "", "URL customers use to reach the portal (default: http://<listen>)")
	migrate := fs.Bool("migrate", false, "apply pending database migrations before starting")
	secure := fs.Bool("secure-cookies", false, "mark cookies Secure (set when served over HTTPS)")
	trustProxy := fs.Bool("trust-proxy", false, "take client addresses from X-Forwarded-For (only behind your own proxy)")
	sessionTTL := fs.Duration("session-ttl", 12*time.Hour, "how long a sign-in lasts")
	zone := fs.String("zone", "cloud.internal", "DNS zone of VM names: <vm>.<tenant>.<zone>")
	placement := fs.String("placement", "spread", "where new VMs go: spread (emptiest host first) or pack (fullest host that fits)")
	consoleIdle := fs.Duration("console-idle-timeout", 15*time.Minute, "close a VM console session after this long without input")
	roles := fs.String("roles", "portal,provisioner", "what this process runs, comma-separated: portal, provisioner, rack (the PXE boot stack alone, for a rack-only server)")
	var prov provisionerFlags
	prov.register(fs)
	var dnsf dnsFlags
	dnsf.register(fs)
	var fwd forwardFlags
	fwd.register(fs)
	var boot bootFlags
	boot.register(fs)
	gatewayPublic := fs.String("ssh-gateway-address", "127.0.0.1:2222", "gateway address customers are told to use (host[:port]; the public address in production)")
	publicAddress := fs.String("public-address", "127.0.0.1", "the ISP's public address, where customers' port forwards are reached")
	gatewayListen := fs.String("ssh-gateway-listen", "127.0.0.1:2222", "address of the SSH gateway customers jump through to their VMs (empty: off)")
	bootstrap := fs.String("bootstrap-email", "admin@fibrix.local", "email of the staff account created on first start")
	smtpURL := fs.String("smtp-url", "", "SMTP relay for the portal's email, smtp://[user:password@]host[:port] (STARTTLS) or smtps://…; with it, sign-ups finish from an emailed link (prefer FIBRIX_SMTP_URL: flags show in ps)")
	mailFrom := fs.String("mail-from", "", "From address of the portal's email (default: Fibrix Cloud <noreply@<public-url host>>)")
	reservedNames := fs.String("reserved-names", "", "more names tenants may not take as their DNS label, comma-separated (ns1, www, admin, mail and other service names always are)")
	if err := applyEnv(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	run, err := parseRoles(*roles)
	if err != nil {
		return err
	}
	var bootStack *bootPlan
	if run["provisioner"] || run["rack"] {
		if bootStack, err = boot.plan(*listen); err != nil {
			return err
		}
	}
	if run["rack"] && bootStack == nil {
		return errors.New("--roles rack runs the PXE boot stack: set --boot-interface")
	}
	strategy, err := capacity.ParseStrategy(*placement)
	if err != nil {
		return fmt.Errorf("--placement: %w", err)
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := c.open(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
	st.Placement = strategy
	if *migrate {
		applied, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			log.Info("database migrated", "versions", applied)
		}
	}
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	if err := st.ReserveNames(splitList(*reservedNames)...); err != nil {
		return fmt.Errorf("--reserved-names: %w", err)
	}
	for _, l := range serviceLabels(*zone, *publicURL, *gatewayPublic, dnsf.ns) {
		_ = st.ReserveNames(l) // a host label that is no DNS label cannot be a slug either
	}
	if n, err := st.RenameReservedTenants(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Warn("renamed tenants whose DNS label is reserved; see their audit logs", "count", n)
	}
	fwdMin, fwdMax, err := fwd.ports()
	if err != nil {
		return err
	}
	var consoles portal.Consoles
	if run["portal"] && run["provisioner"] {
		signer, _, err := clientKey(prov.sshKey, c.dataDir)
		if err != nil {
			return err
		}
		consoles = consoleOpener{st: st, signer: signer}
	}
	g, gctx := errgroup.WithContext(ctx)
	if run["portal"] {
		if err := startPortal(gctx, g, st, portalOptions{consoles: consoles, consoleIdle: *consoleIdle, listen: *listen, publicURL: *publicURL, secure: *secure,
			trustProxy: *trustProxy, sessionTTL: *sessionTTL, zone: *zone, bootstrap: *bootstrap,
			gatewayAddress: *gatewayPublic, publicAddress: *publicAddress, forwardMin: fwdMin, forwardMax: fwdMax,
			smtpURL: *smtpURL, mailFrom: *mailFrom}, stdout, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
	}
	if run["provisioner"] {
		if err := startProvisioner(gctx, g, st, prov, c.dataDir, *zone, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
		if err := startNameserver(gctx, g, st, dnsf, *zone, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
		if err := startGateway(gctx, g, st, *gatewayListen, *zone, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
		if err := startForwarder(gctx, g, st, fwd, *zone, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
		startMachineWorker(gctx, g, st, log)
	}
	if bootStack != nil {
		if err := startBoot(gctx, g, st, bootStack, log); err != nil {
			stop()
			_ = g.Wait()
			return err
		}
	}
	log.Info("fibrix serving", "version", version, "roles", *roles, "database", st.Dialect())
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil // a part that reports the stop we asked for has not failed
	}
	log.Info("fibrix stopped")
	return err
}

// serviceLabels are the tenant labels the region's own names use: the
// first label of the portal's, the gateway's and the name servers' host
// names, and their label under the zone when they lie in it.
func serviceLabels(zone, publicURL, gateway, ns string) []string {
	var out []string
	zone = strings.ToLower(strings.Trim(zone, "."))
	hosts := splitList(ns)
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if h, _, err := net.SplitHostPort(gateway); err == nil {
		hosts = append(hosts, h)
	} else {
		hosts = append(hosts, gateway)
	}
	for _, h := range hosts {
		h = strings.ToLower(strings.Trim(h, "."))
		if h == "" || net.ParseIP(h) != nil {
			continue
		}
		out = append(out, strings.Split(h, ".")[0])
		if rel, ok := strings.CutSuffix(h, "."+zone); ok {
			labels := strings.Split(rel, ".")
			out = append(out, labels[len(labels)-1])
		}
	}
	return out
}

// parseRoles reads --roles.
func parseRoles(s string) (map[string]bool, error) {
	run := map[string]bool{}
	for _, r := range strings.Split(s, ",") {
		switch r = strings.TrimSpace(r); r {
		case "portal", "provisioner", "rack":
			run[r] = true
		case "":
		default:
			return nil, fmt.Errorf("--roles: unknown role %q; use portal, provisioner and/or rack", r)
		}
	}
	if len(run) == 0 {
		return nil, errors.New("--roles: name at least one of portal, provisioner, rack")
	}
	return run, nil
}

type portalOptions struct {
	listen, publicURL, zone, bootstrap string
	secure, trustProxy                 bool
	sessionTTL                         time.Duration
	// What customers are told: where the gateway and their forwards are.
	gatewayAddress, publicAddress string
	forwardMin, forwardMax        int
	smtpURL, mailFrom             string
	// consoles serves VM consoles when this process also runs the
	// provisioner; nil otherwise.
	consoles    portal.Consoles
	consoleIdle time.Duration
}

// startPortal opens the portal's listener, makes sure a staff account
// exists, and serves in g.
func startPortal(ctx context.Context, g *errgroup.Group, st *store.Store, o portalOptions, stdout io.Writer, log *slog.Logger) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	base := o.publicURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	cfg := portal.Config{PublicURL: strings.TrimRight(base, "/"), SecureCookies: o.secure,
		SessionTTL: o.sessionTTL, TrustProxy: o.trustProxy, Version: version, Zone: o.zone,
		GatewayAddress: o.gatewayAddress, PublicAddress: o.publicAddress, ForwardPortMin: o.forwardMin, ForwardPortMax: o.forwardMax,
		Consoles: o.consoles, ConsoleIdle: o.consoleIdle}
	if o.smtpURL != "" {
		from := o.mailFrom
		if from == "" {
			host := "localhost"
			if u, err := url.Parse(base); err == nil && u.Hostname() != "" && net.ParseIP(u.Hostname()) == nil {
				host = u.Hostname()
			}
			from = "Fibrix Cloud <noreply@" + host + ">"
		}
		m, err := mailer.Parse(o.smtpURL, from)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--smtp-url: %w", err)
		}
		cfg.Mailer = m
		log.Info("portal email on: sign-ups finish from an emailed link", "relay", m.String(), "from", from)
	} else {
		log.Warn("portal email off (--smtp-url): sign-up creates accounts at once and so tells visitors whether an email already has an account")
	}
	srv, err := portal.New(ctx, cfg, st, log)
	if err != nil {
		ln.Close()
		return err
	}
	if err := bootstrapStaff(ctx, st, o.bootstrap, base, stdout); err != nil {
		ln.Close()
		return err
	}
	g.Go(func() error { return srv.Serve(ctx, ln) })
	log.Info("portal listening", "url", base)
	return nil
}

// bootstrapStaff creates the first staff account with a generated password
// on a database that has none, and prints how to sign in. The password is
// shown here once and never logged.
func bootstrapStaff(ctx context.Context, st *store.Store, email, base string, stdout io.Writer) error {
	n, err := st.CountStaff(ctx)
	if err != nil {
		return fmt.Errorf("count staff: %w", err)
	}
	if n > 0 {
		fmt.Fprintf(stdout, "Fibrix Cloud is running at %s\n", base)
		return nil
	}
	pw := generatePassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), passwordCost)
	if err != nil {
		return err
	}
	if _, err := st.CreateStaff(ctx, store.Actor{Email: "system"}, email, string(hash), store.RoleAdmin); err != nil {
		return fmt.Errorf("create first staff account: %w", err)
	}
	fmt.Fprintf(stdout, `Fibrix Cloud is running at %s

First start: a staff account was created. Sign in at %s/login with
    email:    %s
    password: %s
This password is shown only now; change it under Account after signing in.
To add staff later: fibrix admin create-staff --email you@example.com --password '…' --role admin

`, base, base, email, pw)
	return nil
}

func generatePassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

func cmdMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	if err := applyEnv(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := c.open(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database schema is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied migrations %v\n", applied)
	return nil
}

// passwordCost is the bcrypt cost of passwords set from the command line,
// the portal's default too.
const passwordCost = 12

// adminCommand holds what every admin subcommand reads: the common database
// settings and the account's email and password.
type adminCommand struct {
	fs              *flag.FlagSet
	c               common
	email, password *string
}

func newAdminCommand(name string, stderr io.Writer) *adminCommand {
	a := &adminCommand{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	a.fs.SetOutput(stderr)
	a.c.register(a.fs)
	a.email = a.fs.String("email", "", "the account's email address")
	a.password = a.fs.String("password", env("FIBRIX_ADMIN_PASSWORD", ""), "the password (at least 10 characters; or FIBRIX_ADMIN_PASSWORD)")
	return a
}

// start parses the flags, checks the password, opens the database (which
// must have the current schema) and hashes the password.
func (a *adminCommand) start(ctx context.Context, args []string, stderr io.Writer) (*store.Store, string, error) {
	if err := applyEnv(a.fs); err != nil {
		return nil, "", err
	}
	if err := a.fs.Parse(args); err != nil {
		return nil, "", err
	}
	if len(*a.password) < 10 || len(*a.password) > 72 {
		return nil, "", errors.New("--password must be 10 to 72 characters")
	}
	st, err := a.c.openCurrent(ctx, stderr)
	if err != nil {
		return nil, "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(*a.password), passwordCost)
	if err != nil {
		st.Close()
		return nil, "", err
	}
	return st, string(hash), nil
}

func cmdCreateStaff(args []string, stdout, stderr io.Writer) error {
	a := newAdminCommand("admin create-staff", stderr)
	role := a.fs.String("role", "admin", "admin, operator or auditor")
	ctx := context.Background()
	st, hash, err := a.start(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateStaff(ctx, store.Actor{Email: "cli"}, *a.email, hash, *role)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "staff account %s (%s) created\n", u.Email, u.Role)
	return nil
}

func cmdSetPassword(args []string, stdout, stderr io.Writer) error {
	a := newAdminCommand("admin set-password", stderr)
	ctx := context.Background()
	st, hash, err := a.start(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.GetUserByEmail(ctx, *a.email)
	if err != nil {
		return fmt.Errorf("%s: %w", *a.email, err)
	}
	if err := st.ChangePassword(ctx, store.Actor{Email: "cli"}, u.ID, hash); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "password of %s changed; their other sessions have ended\n", u.Email)
	return nil
}
