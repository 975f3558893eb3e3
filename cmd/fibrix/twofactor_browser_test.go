package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fibrixcloud/fibrix/portal/otp"
)

// TestBrowserTwoFactor enrols an authenticator from the account page in
// headless Chromium (the QR code drawn, the key read off the page, a code
// confirmed, the recovery codes shown), signs out, and signs in again with
// the password and then a code. A screenshot is saved at each step.
func TestBrowserTwoFactor(t *testing.T) {
	exe := chromium(t)
	bin := buildBinary(t)
	in := serve(t, bin, t.TempDir())
	shots := artifacts(t)
	const email, password = "o@twofactor.example", "correct horse battery"
	customer := api{t: t, base: in.URL}
	customer.must("POST", "/auth/signup", map[string]string{"tenant": "Two Factor Ltd", "email": email, "password": password}, nil, 201)

	ctx := browserContext(t, exe)
	tr := &tour{t: t, ctx: ctx, dir: shots, prefix: "two-factor"}
	shot, run, text := tr.shot, tr.run, tr.text
	codeNow := func(secret string) string {
		t.Helper()
		c, err := otp.Code(secret, otp.Step(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	password1 := chromedp.Steps(
		chromedp.Navigate(in.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
	)

	run("sign in and open the account page",
		password1,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logout-button]`)),
		chromedp.Navigate(in.URL+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=two-factor-card]`)),
	)
	if s := text(`[data-testid=two-factor-status]`); s != "off" {
		t.Fatalf("two-factor status %q before enrolling", s)
	}
	run("set up",
		chromedp.Click(chromedp.CSS(`[data-testid=two-factor-setup]`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.qr`)),
		shot("qr-code"),
	)
	secret := strings.ReplaceAll(text(`[data-testid=two-factor-secret]`), " ", "")
	if len(secret) != 32 {
		t.Fatalf("the page shows the key %q", secret)
	}
	box, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`svg.qr`), "viewBox"))
	if err != nil || box.Value == "" {
		t.Fatalf("QR code viewBox %q: %v", box.Value, err)
	}

	// A wrong code keeps the page and says so; the right one turns it on.
	run("a wrong code",
		chromedp.SendKeys(chromedp.CSS(`#code`), "000000"),
		chromedp.Click(chromedp.CSS(`[data-testid=two-factor-enable]`)),
		chromedp.WaitVisible(chromedp.CSS(`#code[aria-invalid=true]`)),
	)
	run("the app's code",
		chromedp.SetValue(chromedp.CSS(`#code`), codeNow(secret)),
		chromedp.Click(chromedp.CSS(`[data-testid=two-factor-enable]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-codes]`)),
		shot("recovery-codes"),
	)
	codes := strings.Fields(text(`.recovery-codes`))
	if len(codes) != 10 {
		t.Fatalf("recovery codes shown: %q", codes)
	}
	run("back to the account",
		chromedp.Click(chromedp.CSS(`[data-testid=recovery-done]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=two-factor-card]`)),
		shot("account-on"),
	)
	if s := text(`[data-testid=two-factor-status]`); s != "on" {
		t.Errorf("two-factor status %q after enrolling", s)
	}

	// Signing in again asks for a code after the password. The code that
	// confirmed the app is spent, so wait for the next one.
	run("sign out", chromedp.Click(chromedp.CSS(`[data-testid=logout-button]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)))
	run("password", password1, chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-code-form]`)), shot("code-page"))
	time.Sleep(time.Until(time.Unix((otp.Step(time.Now())+1)*otp.Period, 0)) + 200*time.Millisecond)
	run("code",
		chromedp.SendKeys(chromedp.CSS(`#code`), codeNow(secret)),
		chromedp.Click(chromedp.CSS(`[data-testid=login-code-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logout-button]`)),
		shot("signed-in"),
	)

	// A recovery code signs in once.
	run("sign out", chromedp.Click(chromedp.CSS(`[data-testid=logout-button]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)))
	run("recovery code",
		password1,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-code-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#code`), codes[0]),
		chromedp.Click(chromedp.CSS(`[data-testid=login-code-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=logout-button]`)),
		chromedp.Navigate(in.URL+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=recovery-left]`)),
	)
	if left := text(`[data-testid=recovery-left]`); left != "9 recovery codes left." {
		t.Errorf("after using one: %q", left)
	}
}
