package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// chromium finds a Chromium to drive, or skips outside CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium not installed: apt-get install chromium (the browser test drives it headless)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifacts is where screenshots go: $FIBRIX_ARTIFACTS or artifacts/browser
// at the top of the repository.
func artifacts(t *testing.T) string {
	dir := os.Getenv("FIBRIX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func authorizedKey(t *testing.T, comment string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

func weakRSAKey(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(&k.PublicKey)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " old@laptop"
}

// TestBrowserJourney walks the customer and staff journey of the portal in
// headless Chromium against the real binary, saving a screenshot per step.
func TestBrowserJourney(t *testing.T) {
	exe := chromium(t)
	bin := buildBinary(t)
	libvirttest.Ensure(t)
	dataDir := t.TempDir()
	dnsPort := freeUDPPort(t)
	in := serve(t, bin, dataDir, "--watch-interval", "1s", "--dns-listen", "127.0.0.1:"+dnsPort)
	addHost(t, dataDir)
	shots := artifacts(t)
	// The test driver keeps no data, so any local file serves as the image.
	imagePath := filepath.Join(t.TempDir(), "debian-12.qcow2")
	if err := os.WriteFile(imagePath, []byte("a small stand-in image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a small stand-in image\n"))
	imageSum := hex.EncodeToString(sum[:])

	ctx := browserContext(t, exe)

	step := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			step++
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			file := fmt.Sprintf("%02d-%s.png", step, strings.ReplaceAll(name, " ", "-"))
			return os.WriteFile(filepath.Join(shots, file), buf, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		// One step may take 30 s; the first also starts the browser.
		stepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if step == 0 {
			stepCtx = ctx
		}
		if err := chromedp.Do(stepCtx, actions...); err != nil {
			_ = chromedp.Do(ctx, shot("failed "+what))
			errs, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('[role=alert], .form-error, [data-testid^=error-]')).map(e => e.textContent.trim()).join(" | ")`))
			t.Fatalf("%s: %v\nerrors on the page: %s", what, err, errs)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	// Staff registers an image so that customers have something to order.
	run("staff login",
		chromedp.Navigate(in.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), in.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), in.Password),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=admin-tenants-page]`)),
		shot("staff tenants"),
	)
	form := `[data-testid=admin-image-create-form] `
	run("register image",
		chromedp.Navigate(in.URL+"/admin/images"),
		chromedp.WaitVisible(form),
		chromedp.SendKeys(chromedp.CSS(form+`input[name=name]`), "debian-12"),
		chromedp.SendKeys(chromedp.CSS(form+`input[name=os]`), "Debian"),
		chromedp.SendKeys(chromedp.CSS(form+`input[name=version]`), "12"),
		chromedp.SendKeys(chromedp.CSS(form+`input[name=source_url]`), "file://"+imagePath),
		chromedp.SendKeys(chromedp.CSS(form+`input[name=checksum]`), "sha256:"+imageSum),
		chromedp.Submit(chromedp.CSS(form+`input[name=name]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=admin-image-row]`)),
		shot("staff images"),
		chromedp.Click(chromedp.CSS(`[data-testid=logout-button]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
	)

	// A customer signs up.
	run("signup",
		chromedp.Navigate(in.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#tenant`), "Acme Web Shop"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "owner@acme.example"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.SendKeys(chromedp.CSS(`#password_confirm`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=quota-card]`)),
		shot("dashboard empty"),
	)
	instancesBefore := text(`[data-testid=quota-instances]`)

	// A weak key is refused with a clear message; a good one is added.
	run("bad key",
		chromedp.Navigate(in.URL+"/ssh-keys"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=key-add-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#key-name`), "old laptop"),
		chromedp.SetValue(chromedp.CSS(`#public_key`), weakRSAKey(t)),
		chromedp.Click(chromedp.CSS(`[data-testid=key-add-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-public_key]`)),
		shot("bad key refused"),
	)
	if msg := text(`[data-testid=error-public_key]`); !strings.Contains(msg, "2048") {
		t.Errorf("weak key message %q does not name the minimum size", msg)
	}
	run("good key",
		chromedp.SetValue(chromedp.CSS(`#key-name`), "laptop"),
		chromedp.SetValue(chromedp.CSS(`#public_key`), authorizedKey(t, "me@laptop")),
		chromedp.Click(chromedp.CSS(`[data-testid=key-add-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=key-row]`)),
		shot("key added"),
	)
	if fp := text(`[data-testid=key-fingerprint]`); !strings.HasPrefix(fp, "SHA256:") {
		t.Errorf("fingerprint shown as %q", fp)
	}

	// Order a VM; it is honestly pending.
	run("order form",
		chromedp.Navigate(in.URL+"/vms/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-new-form]`)),
	)
	opt, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#image option:nth-child(2)`), "value"))
	if err != nil {
		t.Fatalf("read image option: %v", err)
	}
	imageID := opt.Value
	// With a single key the form preselects it.
	if checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[name=ssh_keys]').checked`)); err != nil || !checked {
		t.Errorf("the only SSH key is not preselected (%v)", err)
	}
	run("order",
		chromedp.SendKeys(chromedp.CSS(`#name`), "web-1"),
		chromedp.Click(chromedp.CSS(`input[name=plan][value=plan-small]`)),
		chromedp.SetValue(chromedp.CSS(`#image`), imageID),
		shot("order form"),
		chromedp.Click(chromedp.CSS(`[data-testid=vm-create-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-status]`)),
		shot("vm ordered"),
	)
	if name := text(`[data-testid=vm-name]`); name != "web-1" {
		t.Errorf("detail page shows %q", name)
	}
	// The status block polls (htmx swaps it in place) until the provisioner
	// has built the VM; then the page shows its address and how to log in.
	run("running",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-status] [data-testid=state-badge][data-state=running]`)),
		chromedp.Navigate(in.URL+"/vms"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-link]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=vm-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=vm-ssh-command]`)),
		shot("vm running"),
	)
	if ip := text(`[data-testid=vm-ip]`); !strings.Contains(ip, "192.0.2.10") {
		t.Errorf("IP shown as %q", ip)
	}
	if dns := text(`[data-testid=vm-dns]`); !strings.Contains(dns, "web-1.acme-web-shop.") {
		t.Errorf("DNS name shown as %q", dns)
	}
	if cmd := text(`[data-testid=vm-ssh-command]`); !strings.Contains(cmd, "ssh debian@192.0.2.10") {
		t.Errorf("ssh command shown as %q", cmd)
	}
	// The VM's name resolves through the product's DNS server.
	if dig, err := exec.LookPath("dig"); err == nil || os.Getenv("CI") != "" {
		var out []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			out, _ = exec.Command(dig, "@127.0.0.1", "-p", dnsPort, "+short", "web-1.acme-web-shop.cloud.internal", "A").Output()
			if strings.TrimSpace(string(out)) == "192.0.2.10" {
				break
			}
		}
		if got := strings.TrimSpace(string(out)); got != "192.0.2.10" {
			t.Errorf("dig web-1.acme-web-shop.cloud.internal = %q, want 192.0.2.10", got)
		}
	}

	run("dashboard after order",
		chromedp.Navigate(in.URL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=quota-card]`)),
		shot("dashboard after order"),
	)
	if after := text(`[data-testid=quota-instances]`); after == instancesBefore {
		t.Errorf("instances quota unchanged after ordering: %q", after)
	}
	run("customer logout",
		chromedp.Click(chromedp.CSS(`[data-testid=logout-button]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
	)

	// Staff sees the order in the audit log.
	run("staff audit",
		chromedp.SendKeys(chromedp.CSS(`#email`), in.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), in.Password),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=admin-tenants-page]`)),
		chromedp.Navigate(in.URL+"/admin/audit?action=vm.create"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=admin-audit-table]`)),
		shot("staff audit"),
	)
	if log := text(`[data-testid=admin-audit-table]`); !strings.Contains(log, "owner@acme.example") || !strings.Contains(log, "web-1") {
		t.Errorf("audit log does not show the order: %.500s", log)
	}
}

// addHost registers a VM host on libvirt's test driver and an address pool
// in the instance's database; the instance's provisioner discovers the host
// and builds ordered VMs on it.
func addHost(t *testing.T, dataDir string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dataDir, "fibrix.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	staff := store.Actor{Email: "test"}
	if _, err := st.CreateHost(ctx, staff, store.HostInput{Name: "kvm-1", URI: "test:///default", StoragePool: "default-pool"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSubnet(ctx, staff, store.SubnetInput{Name: "lan", CIDR: "192.0.2.0/24", Gateway: "192.0.2.1",
		RangeStart: "192.0.2.10", RangeEnd: "192.0.2.200"}); err != nil {
		t.Fatal(err)
	}
	// Wait for discovery, so that orders can be placed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		hosts, err := st.ListHosts(ctx)
		if err == nil && len(hosts) == 1 && hosts[0].State == store.HostReady {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host not discovered: %+v %v", hosts, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeUDPPort returns a UDP port number that is free on 127.0.0.1 now.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, port, _ := net.SplitHostPort(c.LocalAddr().String())
	return port
}
