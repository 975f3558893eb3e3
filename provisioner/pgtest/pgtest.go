// Package pgtest gives tests a real, throwaway PostgreSQL server: one
// cluster per test binary, started on first use in its own temporary
// directory and reachable only over a unix socket, and one fresh, empty
// database per test. A test that must stop and start the server, to see
// what an outage does, gets a cluster of its own from NewCluster.
//
// Use it from a package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.DSN(t)
//		...
//	}
//
// The binaries are taken from the directory named by FIBRIX_PG_BIN (which
// must then hold them), else the highest /usr/lib/postgresql/*/bin, else PATH
// (initdb and pg_ctl). When none is found, DSN and NewCluster skip the test,
// or fail it when the environment variable CI is non-empty. PostgreSQL 13 or
// later is required.
//
// When the tests run as root, initdb and the server run as the postgres user
// (through runuser), since PostgreSQL refuses to run as root.
//
// A killed test binary leaves nothing behind: a watchdog process removes the
// cluster when the binary exits in any way, and clusters that outlive both
// (directories named fibrix-pgtest-* in the temporary directory, whose owner
// process is gone) are removed by the next cluster start.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// dirPrefix names every cluster directory, so stale ones can be found.
	dirPrefix = "fibrix-pgtest-"
	// ownerFile, in a cluster directory, holds the PID of the owning test binary.
	ownerFile = "owner.pid"
	// superuser is the cluster's bootstrap superuser.
	superuser = "postgres"
	// maxConnections is the server's max_connections, enough for concurrency tests.
	maxConnections = 200
	// minVersionNum is the lowest server_version_num supported: DROP DATABASE
	// ... WITH (FORCE) appeared in PostgreSQL 13.
	minVersionNum = 130000
	// cmdTimeout bounds every initdb and pg_ctl run.
	cmdTimeout = 2 * time.Minute
	// sqlTimeout bounds creating or dropping one database.
	sqlTimeout = 30 * time.Second
	// staleAge is how old a cluster directory without an owner file must be
	// before it counts as stale.
	staleAge = time.Hour
	// libBinGlob matches the binary directories of Debian's packages.
	libBinGlob = "/usr/lib/postgresql/*/bin"
	// maxSocketPath is the usable length of a unix socket path on Linux and
	// macOS (sun_path is 108 and 104 bytes).
	maxSocketPath = 100
)

const installHint = "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; " +
	"macOS: brew install postgresql@15) or set FIBRIX_PG_BIN to the directory " +
	"holding initdb and pg_ctl"

// notInstalledError reports a missing PostgreSQL installation, which skips
// tests instead of failing them (outside CI).
type notInstalledError struct{ detail string }

func (e *notInstalledError) Error() string { return "PostgreSQL not installed: " + e.detail }

// cluster is the one PostgreSQL cluster of this test binary. It is
// process-wide mutable state, which our style otherwise forbids: tests of a
// package run in one process and must share one lazily started cluster (a
// cluster per test would cost a second each), and Main must find it to stop
// it. The mutex in clusterState guards all of it.
var cluster = &clusterState{}

// clusterState is a lazily started cluster. The zero value is not started.
type clusterState struct {
	mu      sync.Mutex
	started bool     // start was attempted; err holds its outcome
	stopped bool     // stop ran; no more databases
	err     error    // why start failed, reported to every caller
	c       *Cluster // the running cluster, when start succeeded
}

// Cluster is a throwaway PostgreSQL cluster in a temporary directory,
// reachable only over a unix socket there. Its Stop and Start, which must
// not be called concurrently, stop the server and start it again on the same
// port and data directory.
type Cluster struct {
	bin     string
	runAs   string // user to run initdb and pg_ctl as, "" for the current user
	runuser string // path of runuser, when runAs is set
	dir     string // temporary directory: data/, log, socket, owner file
	port    int
	running bool // the server was started and not stopped since
	// watchdog removes the cluster if this process dies without it being
	// removed: it waits for EOF on its stdin, whose write end only this
	// process holds.
	watchdog      *exec.Cmd
	watchdogStdin io.WriteCloser
}

// Main runs the tests, then stops the cluster, if one was started, and
// removes its directory. It returns the exit code for os.Exit, which is 1
// when the tests passed but the cluster could not be stopped.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Without Main the cluster is still stopped and removed when the test binary
// exits, though less gracefully.
func Main(m *testing.M) int {
	code := m.Run()
	if err := cluster.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// DSN returns the DSN (key=value form) of a new, empty database in this
// binary's cluster, starting the cluster on first use. The database is
// dropped, disconnecting any remaining sessions, in t.Cleanup.
//
// When PostgreSQL is not installed DSN skips t, or fails it when the
// environment variable CI is non-empty.
func DSN(t testing.TB) string {
	t.Helper()
	c, err := cluster.ensureStarted()
	if err != nil {
		skipOrFail(t, err)
	}

	name := fmt.Sprintf("t_%016x", rand.Uint64())
	ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer cancel()
	if err := c.exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
		defer cancel()
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.dsn(name)
}

// NewCluster creates and starts a cluster of t's own, apart from the one
// DSN uses, which t may stop and start (see Cluster). It is stopped and
// removed in t.Cleanup.
//
// When PostgreSQL is not installed NewCluster skips t, or fails it when the
// environment variable CI is non-empty.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := newCluster()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		// Immediate: nothing in a test's own cluster is worth a checkpoint.
		if err := c.remove("immediate"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// DSN returns the DSN (key=value form) of the cluster's maintenance
// database postgres.
func (c *Cluster) DSN() string { return c.dsn("postgres") }

// Stop stops the server with a fast shutdown: sessions are ended and
// in-flight transactions rolled back.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := c.stopServer(ctx, "fast"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Start starts the server again after Stop, on the same port and data
// directory.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := c.startServer(ctx); err != nil {
		t.Fatal(err.Error())
	}
}

// skipOrFail ends t for err, a failure to start a cluster: a skip when
// PostgreSQL is not installed and the environment variable CI is empty, a
// failure otherwise.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	var notInstalled *notInstalledError
	if errors.As(err, &notInstalled) && os.Getenv("CI") == "" {
		t.Skip(err.Error())
	}
	t.Fatal(err.Error())
}

// ensureStarted starts the cluster unless a start was already attempted, and
// returns the outcome of that one attempt.
func (s *clusterState) ensureStarted() (*Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errors.New("pgtest: cluster already stopped (DSN called after Main's tests finished)")
	}
	if !s.started {
		s.started = true
		s.c, s.err = newCluster()
	}
	return s.c, s.err
}

// dsn returns the DSN of database name. dir and port never change once
// newCluster has returned.
func (c *Cluster) dsn(name string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteDSN(c.dir), c.port, superuser, name)
}

// exec runs one statement in the maintenance database postgres.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	return nil
}

// newCluster creates, configures and starts a cluster. On failure it
// removes whatever it created.
func newCluster() (*Cluster, error) {
	bin, err := findBin(libBinGlob)
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup(superuser)
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs a %q user to run PostgreSQL as: %w", superuser, err)
		}
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return nil, fmt.Errorf("pgtest: uid of %s: %w", superuser, err)
		}
		if gid, err = strconv.Atoi(u.Gid); err != nil {
			return nil, fmt.Errorf("pgtest: gid of %s: %w", superuser, err)
		}
		if c.runuser, err = exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs runuser to run PostgreSQL as %s: %w", superuser, err)
		}
		c.runAs = superuser
	}

	base := os.TempDir()
	if len(base)+len("/"+dirPrefix+"0123456789/.s.PGSQL.65535") > maxSocketPath {
		base = "/tmp" // keep the socket path within sun_path
	}
	c.removeStale(base)

	if c.dir, err = os.MkdirTemp(base, dirPrefix); err != nil {
		return nil, fmt.Errorf("pgtest: create cluster directory: %w", err)
	}
	if err := c.prepare(uid, gid); err != nil {
		c.cleanupFailed()
		return nil, err
	}
	return c, nil
}

// prepare fills the fresh directory c.dir and starts the server in it.
func (c *Cluster) prepare(uid, gid int) error {
	// Traversable, so that other users can reach the socket.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: chmod cluster directory: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: chown cluster directory to %s: %w", superuser, err)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pgtest: write owner file: %w", err)
	}
	if err := c.startWatchdog(); err != nil {
		return err
	}

	data := filepath.Join(c.dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if out, err := runSetup(c.command(ctx, "initdb", "-D", data, "-A", "trust", "-U", superuser,
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")); err != nil {
		return fmt.Errorf("pgtest: initdb: %s: %w", bytes.TrimSpace(out), err)
	}

	c.port = 40000 + rand.IntN(20000)
	conf := fmt.Sprintf(`
# pgtest: throwaway test cluster, reachable only through its unix socket.
listen_addresses = ''
port = %d
unix_socket_directories = '%s'
unix_socket_permissions = 0777
max_connections = %d
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
`, c.port, strings.ReplaceAll(c.dir, "'", "''"), maxConnections)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: open postgresql.conf: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: write postgresql.conf: %w", err)
	}

	if err := c.startServer(ctx); err != nil {
		return err
	}

	// Check that this process can connect, and the version.
	sctx, scancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer scancel()
	conn, err := pgx.Connect(sctx, c.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: connect to new cluster in %s\nserver log:\n%s: %w", c.dir, logTail(c.logFile()), err)
	}
	defer conn.Close(context.Background())
	var version int
	if err := conn.QueryRow(sctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("pgtest: query server version: %w", err)
	}
	if version < minVersionNum {
		return fmt.Errorf("pgtest: PostgreSQL in %s is version %d, need %d or later", c.bin, version, minVersionNum)
	}
	return nil
}

// startServer starts the server of the cluster's data directory, which
// postgresql.conf there configures, and waits until it accepts connections.
func (c *Cluster) startServer(ctx context.Context) error {
	if out, err := runSetup(c.command(ctx, "pg_ctl", "-D", c.dataDir(), "-l", c.logFile(), "-w", "-t", "60", "start")); err != nil {
		return fmt.Errorf("pgtest: pg_ctl start: %s\nserver log:\n%s: %w", bytes.TrimSpace(out), logTail(c.logFile()), err)
	}
	c.running = true
	return nil
}

// stopServer stops the server with the pg_ctl shutdown mode and waits
// until it is gone.
func (c *Cluster) stopServer(ctx context.Context, mode string) error {
	if out, err := c.command(ctx, "pg_ctl", "-D", c.dataDir(), "-m", mode, "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %s: %w", bytes.TrimSpace(out), err)
	}
	c.running = false
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "log") }

// watchdogScript waits for EOF on stdin, then, if the cluster directory $1
// still exists, stops its server ("$@" is the pg_ctl command) and removes
// it. It gives setup commands killed along with the test binary a second to
// settle, and retries for a while: initdb removes its data directory on
// SIGTERM while rm -rf runs.
const watchdogScript = `d=$1; shift
cat >/dev/null
[ -e "$d" ] || exit 0
sleep 1
for i in 1 2 3 4 5 6 7 8 9 10; do
	if [ -f "$d/data/postmaster.pid" ]; then "$@" -D "$d/data" -m immediate -w stop; fi
	rm -rf "$d"
	[ -e "$d" ] || exit 0
	sleep 1
done
exit 1`

// startWatchdog starts a shell, in its own process group so that a Ctrl-C
// to the test run does not reach it, running watchdogScript. Its stdin is
// closed by remove, or by the kernel when this process dies in any way (test
// timeout panic, SIGKILL), which is what makes a killed test binary leave
// nothing behind.
func (c *Cluster) startWatchdog() error {
	args := append([]string{"-c", watchdogScript, "sh", c.dir}, c.argv("pg_ctl")...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.SysProcAttr = watchdogAttr()
	// Stdout and stderr go to /dev/null: an inherited pipe would keep
	// "go test" waiting for the watchdog.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("pgtest: watchdog stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start watchdog: %w", err)
	}
	c.watchdog, c.watchdogStdin = cmd, stdin
	return nil
}

// cleanupFailed removes what a failed start left.
func (c *Cluster) cleanupFailed() {
	if c.watchdog != nil {
		// The watchdog stops a server that got started and removes c.dir.
		_ = c.watchdogStdin.Close()
		_ = c.watchdog.Wait()
		c.watchdog = nil
	}
	_ = os.RemoveAll(c.dir)
}

// stop stops the cluster, if one was started, and removes its directory.
func (s *clusterState) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if !s.started || s.err != nil {
		return nil // never started, or start cleaned up after itself
	}
	return s.c.remove("fast")
}

// remove stops the server, if it runs, with the pg_ctl shutdown mode and
// removes the cluster directory.
func (c *Cluster) remove(mode string) error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if c.running {
		if err := c.stopServer(ctx, mode); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
	}
	// Lets the watchdog exit; it also retries both steps above if they failed.
	if err := c.watchdogStdin.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close watchdog: %w", err))
	}
	if err := c.watchdog.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("watchdog: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop cluster in %s: %w", c.dir, err)
	}
	return nil
}

// removeStale stops and removes clusters left in base by test binaries that
// died without their watchdog cleaning up (say, the watchdog was killed too).
// A cluster is stale when its owner process is gone, or when it has no owner
// file and is older than staleAge. Best effort: errors are ignored.
func (c *Cluster) removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		if !isStale(dir) {
			continue
		}
		data := filepath.Join(dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
			_ = c.command(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run()
			cancel()
		}
		_ = os.RemoveAll(dir)
	}
}

// isStale reports whether the cluster directory dir belongs to no live test
// binary.
func isStale(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		fi, err := os.Stat(dir)
		return err == nil && fi.IsDir() && time.Since(fi.ModTime()) > staleAge
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return !processExists(pid)
}

// command returns a command running the PostgreSQL program name, as c.runAs
// when set.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(c.argv(name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C") // English messages
	return cmd
}

// runSetup runs cmd, a step of starting the cluster, and returns its
// combined output. The command is killed (SIGTERM) if this process dies
// meanwhile, where the platform allows, so that the watchdog does not race a
// setup step that outlives the test binary. Pdeathsig fires when the thread
// that started the child exits, so the goroutine keeps its thread until the
// child is done.
func runSetup(cmd *exec.Cmd) ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = setupAttr()
	return cmd.CombinedOutput()
}

// argv returns the command line prefix that runs the PostgreSQL program
// name, as c.runAs when set.
func (c *Cluster) argv(name string) []string {
	prog := filepath.Join(c.bin, name)
	if c.runAs == "" {
		return []string{prog}
	}
	return []string{c.runuser, "-u", c.runAs, "--", prog}
}

// findBin returns the directory holding initdb and pg_ctl: $FIBRIX_PG_BIN,
// else the highest version of libGlob (libBinGlob but in tests), else the
// directory of initdb in PATH (pg_ctl must be next to it).
func findBin(libGlob string) (string, error) {
	if dir := os.Getenv("FIBRIX_PG_BIN"); dir != "" {
		if !hasPrograms(dir) {
			// Set but wrong is a mistake to report, not a reason to skip.
			return "", fmt.Errorf("pgtest: FIBRIX_PG_BIN=%s does not hold executable initdb and pg_ctl", dir)
		}
		return dir, nil
	}
	dirs, _ := filepath.Glob(libGlob)
	slices.SortFunc(dirs, func(a, b string) int { // highest version first
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range dirs {
		if hasPrograms(dir) {
			return dir, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks: pg_ctl finds postgres next to its real self.
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = real
		}
		if dir := filepath.Dir(initdb); hasPrograms(dir) {
			return dir, nil
		}
	}
	return "", &notInstalledError{detail: "no initdb and pg_ctl in $FIBRIX_PG_BIN, " +
		"/usr/lib/postgresql/*/bin or PATH; " + installHint}
}

// hasPrograms reports whether dir holds executable initdb and pg_ctl.
func hasPrograms(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions compares dotted version numbers such as "9.6" and "15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// logTail returns the last lines of the server log file, for failure messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// quoteDSN quotes a value for a key=value DSN when it needs quoting.
func quoteDSN(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
