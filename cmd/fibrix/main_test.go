package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// binary is the fibrix command built once for the tests in this package.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fibrix")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=test", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build fibrix: %v", err)
	}
	return bin
}

// instance is a running `fibrix serve`.
type instance struct {
	URL      string
	Email    string
	Password string
	Stderr   *strings.Builder
}

var firstStart = regexp.MustCompile(`(?s)running at (http://\S+).*?email:\s+(\S+)\s+password:\s+(\S+)`)

// serve starts `fibrix serve --migrate` on a free port with its own data dir
// and returns once it prints how to sign in.
func serve(t *testing.T, bin, dataDir string, extra ...string) *instance {
	t.Helper()
	args := append([]string{"serve", "--migrate", "--listen", "127.0.0.1:0", "--metadata-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--ssh-gateway-listen", "127.0.0.1:0", "--http-forward-listen", "127.0.0.1:0", "--tls-forward-listen", "127.0.0.1:0", "--forward-ports", "60000-60009", "--data-dir", dataDir}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("fibrix did not stop within 10 s of SIGINT")
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("fibrix exited early:\n%s\n%s", out.String(), stderr.String())
			}
			out.WriteString(line + "\n")
			if m := firstStart.FindStringSubmatch(out.String()); m != nil {
				go func() {
					for range lines {
					}
				}()
				return &instance{URL: m[1], Email: m[2], Password: m[3], Stderr: &stderr}
			}
		case <-deadline:
			t.Fatalf("fibrix did not print sign-in details within 60 s:\n%s\n%s", out.String(), stderr.String())
		}
	}
}

func TestServeBootstrapAndLogin(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()

	// Without --migrate a fresh database is refused with a clear message.
	out, err := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metadata-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--ssh-gateway-listen", "127.0.0.1:0", "--http-forward-listen", "127.0.0.1:0", "--tls-forward-listen", "127.0.0.1:0", "--forward-ports", "60000-60009", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "database schema is outdated") {
		t.Fatalf("serve on an empty database: err %v, output %s", err, out)
	}

	in := serve(t, bin, dir)
	if in.Email != "admin@fibrix.local" || len(in.Password) < 16 {
		t.Fatalf("bootstrap account %q / %d-character password", in.Email, len(in.Password))
	}
	if strings.Contains(in.Stderr.String(), in.Password) {
		t.Error("the bootstrap password appears in the logs")
	}

	res, err := http.Get(in.URL + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()

	// Sign in through the real form with the printed password.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err = c.Get(in.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("the login page carries no form token: %.300s", page)
	}
	csrf := string(m[1])
	res, err = c.PostForm(in.URL+"/login", url.Values{"email": {in.Email}, "password": {in.Password}, "_csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/admin/tenants" {
		t.Fatalf("login landed on %s with %d: %.300s", res.Request.URL.Path, res.StatusCode, body)
	}
}

func TestCommands(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--data-dir", dir)...).CombinedOutput()
		return string(out), err
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "fibrix test" {
		t.Errorf("version: %q %v", out, err)
	}
	if out, err := run("admin", "create-staff", "--email", "ops@isp.example", "--password", "long enough pw"); err == nil {
		t.Errorf("create-staff before migrate should fail: %s", out)
	}
	if out, err := run("migrate"); err != nil || !strings.Contains(out, "applied migrations") {
		t.Fatalf("migrate: %s %v", out, err)
	}
	if out, err := run("migrate"); err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("second migrate: %s %v", out, err)
	}
	for name, args := range map[string][]string{
		"short password": {"admin", "create-staff", "--email", "a@isp.example", "--password", "short"},
		"bad role":       {"admin", "create-staff", "--email", "a@isp.example", "--password", "long enough pw", "--role", "root"},
		"bad email":      {"admin", "create-staff", "--email", "nope", "--password", "long enough pw"},
		"unknown user":   {"admin", "set-password", "--email", "ghost@isp.example", "--password", "long enough pw"},
	} {
		if out, err := run(args...); err == nil {
			t.Errorf("%s: want failure, got %s", name, out)
		}
	}
	if out, err := run("admin", "create-staff", "--email", "ops@isp.example", "--password", "long enough pw", "--role", "operator"); err != nil {
		t.Fatalf("create-staff: %s %v", out, err)
	}
	if out, err := run("admin", "create-staff", "--email", "ops@isp.example", "--password", "long enough pw"); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("duplicate create-staff: %s %v", out, err)
	}
	if out, err := run("admin", "set-password", "--email", "ops@isp.example", "--password", "another long pw"); err != nil {
		t.Errorf("set-password: %s %v", out, err)
	}
	if out, err := exec.Command(bin, "frobnicate").CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown command") {
		t.Errorf("unknown command: %s", out)
	}
}

func TestServeOnExistingStaffPrintsNoPassword(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	first := serve(t, bin, dir)
	_ = first
	// A second process on the same database (another port) must not create
	// another account or print a password.
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metadata-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--ssh-gateway-listen", "127.0.0.1:0", "--http-forward-listen", "127.0.0.1:0", "--tls-forward-listen", "127.0.0.1:0", "--forward-ports", "60000-60009", "--data-dir", dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "Fibrix Cloud is running at") {
		t.Fatalf("second start printed %q (%v)", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rest, _ := io.ReadAll(readerWithContext(ctx, stdout))
	if strings.Contains(string(rest), "password:") {
		t.Errorf("second start printed a password: %s", rest)
	}
}

// readerWithContext stops reading when ctx ends.
func readerWithContext(ctx context.Context, r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		<-ctx.Done()
		pw.Close()
	}()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	return pr
}

func ExampleRun() {
	_ = run([]string{"version"}, os.Stdout, io.Discard)
	fmt.Println()
	// Output: fibrix dev
}

func TestApplyEnv(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "")
	workers := fs.Int("workers", 4, "")
	t.Setenv("FIBRIX_LISTEN", "0.0.0.0:9000")
	t.Setenv("FIBRIX_WORKERS", "8")
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--workers", "2"}); err != nil {
		t.Fatal(err)
	}
	if *listen != "0.0.0.0:9000" || *workers != 2 {
		t.Errorf("listen %q workers %d: want the environment's address and the flag's worker count", *listen, *workers)
	}
	t.Setenv("FIBRIX_WORKERS", "many")
	bad := flag.NewFlagSet("t", flag.ContinueOnError)
	bad.Int("workers", 4, "")
	if err := applyEnv(bad); err == nil || !strings.Contains(err.Error(), "FIBRIX_WORKERS") {
		t.Errorf("bad FIBRIX_WORKERS: %v", err)
	}
}
