package mailer_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/fibrixcloud/fibrix/portal/mailer"
	"github.com/fibrixcloud/fibrix/portal/mailer/mailtest"
)

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "mail.example.net", "http://mail.example.net", "smtp://", "smtp://h/path", "smtp://h?x=1"} {
		if _, err := mailer.Parse(bad, "noreply@example.net"); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if _, err := mailer.Parse("smtp://mail.example.net", "not an address"); err == nil {
		t.Error("a bad From address was accepted")
	}
	for raw, want := range map[string]string{
		"smtp://u:secret@mail.example.net:587": "smtp://mail.example.net:587",
		"smtp://mail.example.net":              "smtp://mail.example.net:25",
		"smtps://mail.example.net":             "smtps://mail.example.net:465",
	} {
		s, err := mailer.Parse(raw, "Fibrix Cloud <noreply@example.net>")
		if err != nil || s.String() != want {
			t.Errorf("Parse(%q) = %v %v, want %s", raw, s, err, want)
		}
		if strings.Contains(s.String(), "secret") {
			t.Errorf("%s shows the password", s)
		}
	}
}

// TestSendThroughRelay delivers through a real SMTP server, in the clear on
// loopback and with STARTTLS verified against the relay's certificate.
func TestSendThroughRelay(t *testing.T) {
	ctx := context.Background()
	for _, startTLS := range []bool{false, true} {
		relay := mailtest.Start(t, mailtest.Options{StartTLS: startTLS})
		s, err := mailer.Parse("smtp://"+relay.Addr, "Fibrix Cloud <noreply@cloud.example.net>")
		if err != nil {
			t.Fatal(err)
		}
		if startTLS {
			s.TLS = relay.TLSConfig()
		}
		long := strings.Repeat("a long line that must survive transfer encoding ", 4)
		err = s.Send(ctx, mailer.Message{To: "Ops <ops@example.com>", Subject: "Finish signing up — Fibrix Cloud",
			Text: "Hello,\n\nfollow https://portal.example.net/signup/confirm?token=fsu_abc=def\n" + long + "\nÀ bientôt\n"})
		if err != nil {
			t.Fatalf("starttls=%v: %v", startTLS, err)
		}
		got := relay.Wait(t, "ops@example.com", 1)[0]
		if got.Subject != "Finish signing up — Fibrix Cloud" || !strings.Contains(got.From, "noreply@cloud.example.net") {
			t.Errorf("starttls=%v: headers %+v", startTLS, got)
		}
		if !strings.Contains(got.Text, "token=fsu_abc=def\n") || !strings.Contains(got.Text, long) || !strings.Contains(got.Text, "À bientôt") {
			t.Errorf("starttls=%v: body %q", startTLS, got.Text)
		}
		if got.Header.Get("Message-Id") == "" || got.Header.Get("Date") == "" {
			t.Errorf("starttls=%v: no Message-ID or Date: %v", startTLS, got.Header)
		}
	}
}

// TestSendRefusals: a certificate that does not verify, credentials to a
// relay without TLS, and header injection are refused before anything is
// sent.
func TestSendRefusals(t *testing.T) {
	ctx := context.Background()
	tlsRelay := mailtest.Start(t, mailtest.Options{StartTLS: true})
	s, _ := mailer.Parse("smtp://"+tlsRelay.Addr, "noreply@cloud.example.net")
	if err := s.Send(ctx, mailer.Message{To: "ops@example.com", Subject: "x", Text: "x"}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("an unverified certificate: %v", err)
	}

	// A relay on this machine's own network address: not loopback.
	ip := outsideAddress(t)
	open := mailtest.Start(t, mailtest.Options{Host: "0.0.0.0"})
	_, port, _ := net.SplitHostPort(open.Addr)
	s, _ = mailer.Parse("smtp://user:secret@"+net.JoinHostPort(ip, port), "noreply@cloud.example.net")
	if err := s.Send(ctx, mailer.Message{To: "ops@example.com", Subject: "x", Text: "x"}); err == nil || !strings.Contains(err.Error(), "offers no TLS") || strings.Contains(err.Error(), "secret") {
		t.Errorf("credentials without TLS: %v", err)
	}
	s, _ = mailer.Parse("smtp://"+net.JoinHostPort(ip, port), "noreply@cloud.example.net")
	for _, m := range []mailer.Message{
		{To: "ops@example.com", Subject: "hi\r\nBcc: victim@example.com", Text: "x"},
		{To: "ops@example.com\r\nBcc: victim@example.com", Subject: "hi", Text: "x"},
		{To: "not an address", Subject: "hi", Text: "x"},
	} {
		if err := s.Send(ctx, m); err == nil {
			t.Errorf("sent %+v", m)
		}
	}
	if n := len(open.Messages(t)) + len(tlsRelay.Messages(t)); n != 0 {
		t.Errorf("%d messages delivered by refused sends", n)
	}
}

func outsideAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no IPv4 address outside loopback")
	return ""
}
