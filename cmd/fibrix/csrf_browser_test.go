package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fibrixcloud/fibrix/provisioner/libvirttest"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// TestBrowserCSRFFromPortForward is a hostile customer's page served through
// the real forwarder on the public address, which shares the portal's site
// (cookies ignore ports). The page plants its own CSRF cookie with the token
// the portal gives that cookie, then auto-submits forms to the portal in the
// browser of a signed-in customer and of a signed-in admin. Nothing may
// change; the same forms from the portal's own pages still work.
func TestBrowserCSRFFromPortForward(t *testing.T) {
	exe := chromium(t)
	bin := buildBinary(t)
	libvirttest.Ensure(t)
	dataDir := t.TempDir()
	in := serve(t, bin, dataDir, "--watch-interval", "1s")
	shots := artifacts(t)

	staff := api{t: t, base: in.URL}
	var sess struct{ Token string }
	staff.must("POST", "/auth/login", map[string]string{"email": in.Email, "password": in.Password}, &sess, 200)
	staff.token = sess.Token
	imagePath := filepath.Join(t.TempDir(), "debian-12.qcow2")
	if err := os.WriteFile(imagePath, []byte("a small stand-in image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a small stand-in image\n"))
	staff.must("POST", "/admin/images", map[string]any{"name": "debian-12", "os": "Debian", "version": "12",
		"source_url": "file://" + imagePath, "checksum": "sha256:" + hex.EncodeToString(sum[:])}, nil, 201)
	// The VM's address is on loopback, so that a local server can be the
	// customer's web site behind the port forward.
	staff.must("POST", "/admin/subnets", map[string]any{"name": "lan", "cidr": "127.0.9.0/24", "gateway": "127.0.9.1",
		"range_start": "127.0.9.10", "range_end": "127.0.9.20"}, nil, 201)
	var host struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	staff.must("POST", "/admin/hosts", map[string]any{"name": "kvm-1", "uri": "test:///default", "storage_pool": "default-pool"}, &host, 201)
	for deadline := time.Now().Add(30 * time.Second); host.State != "ready"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("host not ready: %s", host.State)
		}
		staff.must("GET", "/admin/hosts/"+host.ID, nil, &host, 200)
	}

	// The attacker: a customer with a VM and a port forward to its web site.
	evil := api{t: t, base: in.URL}
	evil.must("POST", "/auth/signup", map[string]string{"tenant": "Mallory", "email": "m@mallory.example", "password": "correct horse battery"}, &sess, 201)
	evil.token = sess.Token
	var key struct{ ID string }
	evil.must("POST", "/ssh-keys", map[string]string{"name": "k", "public_key": authorizedKey(t, "m@laptop")}, &key, 201)
	var vm struct {
		ID    string `json:"id"`
		State string `json:"state"`
		IP    string `json:"ip"`
	}
	evil.must("POST", "/vms", map[string]any{"name": "www", "plan": "nano", "image": "debian-12", "ssh_keys": []string{key.ID}}, &vm, 201)
	for deadline := time.Now().Add(30 * time.Second); vm.State != "running" || vm.IP == ""; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("attacker's VM not running: %+v", vm)
		}
		evil.must("GET", "/vms/"+vm.ID, nil, &vm, 200)
	}
	site := evilSite(t, in.URL, vm.IP)
	var fw struct {
		Address string `json:"address"`
	}
	evil.must("POST", "/forwards", map[string]any{"vm": vm.ID, "target_port": site}, &fw, 201)
	evilURL := "http://" + fw.Address
	waitPage(t, evilURL+"/customer")

	// The victims: a customer and the staff admin, signed in in one browser.
	victim := api{t: t, base: in.URL}
	victim.must("POST", "/auth/signup", map[string]string{"tenant": "Victim Ltd", "email": "v@victim.example", "password": "correct horse battery"}, &sess, 201)

	ctx := browserContext(t, exe)
	step := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			step++
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, fmt.Sprintf("csrf-%02d-%s.png", step, name)), buf, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			_ = chromedp.Do(ctx, shot("failed"))
			t.Fatalf("%s: %v", what, err)
		}
	}
	login := func(email, password string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(in.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
			chromedp.SendKeys(chromedp.CSS(`#email`), email),
			chromedp.SendKeys(chromedp.CSS(`#password`), password),
			chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=logout-button]`)),
		)
	}
	// attack opens the attacker's page and waits until its form was sent
	// (the page records that in its title just before submitting).
	attack := func(path string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(evilURL+path),
			chromedp.Poll[chromedp.Void](`document.location.host !== `+jsString(fw.Address)),
			chromedp.Sleep(500*time.Millisecond),
		)
	}

	run("customer signs in", login("v@victim.example", "correct horse battery"))
	run("customer visits the page", attack("/customer"), shot("customer-attack-refused"))
	refused, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	tokenNames := func() []string {
		t.Helper()
		st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "fibrix.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.GetUserByEmail(context.Background(), "v@victim.example")
		if err != nil {
			t.Fatal(err)
		}
		list, err := st.ListAPITokens(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tk := range list {
			names = append(names, tk.Name)
		}
		return names
	}
	if names := tokenNames(); len(names) != 0 {
		t.Fatalf("the port-forward page created API tokens %v for the customer; the browser showed: %.300s", names, refused)
	}
	if !strings.Contains(refused, "another site") && !strings.Contains(refused, "expired") {
		t.Errorf("the refusal page says %.300q", refused)
	}

	// The same form from the portal's own page works: the test can see a change.
	run("customer makes a token on the portal",
		chromedp.Navigate(in.URL+"/account/tokens"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=token-create-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#token-name`), "laptop"),
		chromedp.Click(chromedp.CSS(`[data-testid=token-create-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-token]`)),
	)
	if names := tokenNames(); len(names) != 1 || names[0] != "laptop" {
		t.Errorf("tokens after the portal's own form: %v", names)
	}

	run("customer signs out", chromedp.Click(chromedp.CSS(`[data-testid=logout-button]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)))
	run("admin signs in", login(in.Email, in.Password))
	run("admin visits the page", attack("/staff"), shot("staff-attack-refused"))
	var users struct {
		Items []struct{ Email string } `json:"items"`
	}
	staff.must("GET", "/admin/users?q=evil%40mallory.example", nil, &users, 200)
	if len(users.Items) != 0 {
		t.Fatalf("the port-forward page created a staff account: %+v", users.Items)
	}
}

// evilSite serves the attacker's pages on ip and returns the port. Each page
// plants a CSRF cookie for the whole site, with the form token the portal
// hands out for that cookie, and submits a form to the portal.
func evilSite(t *testing.T, portal, ip string) int {
	t.Helper()
	planted := "p" + strings.Repeat("x", 40)
	req, _ := http.NewRequest("GET", portal+"/login", nil)
	req.AddCookie(&http.Cookie{Name: "fibrix_csrf", Value: planted})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the login page: %.300s", body)
	}
	token := html.UnescapeString(string(m[1]))
	page := func(action string, fields map[string]string) string {
		var in strings.Builder
		for k, v := range fields {
			fmt.Fprintf(&in, `<input type="hidden" name="%s" value="%s">`, k, html.EscapeString(v))
		}
		return `<!doctype html><html><body><h1>Totally normal site</h1>` +
			`<form id="f" method="post" action="` + portal + action + `">` + in.String() +
			`<input type="hidden" name="_csrf" value="` + html.EscapeString(token) + `"></form>` +
			`<script>document.cookie = "fibrix_csrf=` + planted + `; path=/";` +
			`document.getElementById("f").submit();</script></body></html>`
	}
	pages := map[string]string{
		"/customer": page("/account/tokens", map[string]string{"name": "evil", "scope": "write"}),
		"/staff":    page("/admin/users", map[string]string{"email": "evil@mallory.example", "role": "admin", "password": "correct horse battery", "password_confirm": "correct horse battery"}),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "8080"))
	if err != nil {
		t.Fatalf("the attacker's site on the VM address: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, p)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return 8080
}

// waitPage waits until url answers 200 (the forwarder has picked up the route).
func waitPage(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served through the forward: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// browserContext starts headless Chromium with a fresh profile.
func browserContext(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}
