// Package mailtest runs a real SMTP server (aiosmtpd, Debian package
// python3-aiosmtpd) for tests and reads what it received.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Relay is one running aiosmtpd that keeps every message in a Maildir.
type Relay struct {
	Addr    string // host:port
	CAPool  *x509.CertPool
	maildir string
}

// Options choose how the relay listens.
type Options struct {
	Host     string // "127.0.0.1" unless given; "0.0.0.0" listens everywhere
	StartTLS bool   // offer and require STARTTLS, with a certificate for Host
}

// Start runs a relay until the test ends. It skips (fails under CI) when
// aiosmtpd is not installed, naming the package.
func Start(t testing.TB, o Options) *Relay {
	t.Helper()
	python := "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("aiosmtpd not found (%s): install the Debian package python3-aiosmtpd", strings.TrimSpace(string(out)))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	dir := t.TempDir()
	r := &Relay{maildir: filepath.Join(dir, "Maildir")}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	args := []string{"-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("%s:%d", o.Host, port)}
	if o.StartTLS {
		cert, key := selfSigned(t, dir, o.Host)
		args = append(args, "--tlscert", cert, "--tlskey", key)
		pool := x509.NewCertPool()
		pemCert, _ := os.ReadFile(cert)
		pool.AppendCertsFromPEM(pemCert)
		r.CAPool = pool
	}
	args = append(args, "-c", "aiosmtpd.handlers.Mailbox", r.maildir)
	cmd := exec.Command(python, args...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aiosmtpd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	dialHost := o.Host
	if dialHost == "0.0.0.0" {
		dialHost = "127.0.0.1"
	}
	r.Addr = net.JoinHostPort(o.Host, fmt.Sprint(port))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", net.JoinHostPort(dialHost, fmt.Sprint(port))); err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aiosmtpd did not listen on port %d:\n%s", port, logs)
		}
	}
	return r
}

// Received is one message as the relay stored it, decoded.
type Received struct {
	From, To, Subject string
	Header            mail.Header
	Text              string
}

// Messages reads every message received so far.
func (r *Relay) Messages(t testing.TB) []Received {
	t.Helper()
	var out []Received
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(r.maildir, sub, "*"))
		for _, f := range files {
			b, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := mail.ReadMessage(b)
			if err != nil {
				_ = b.Close()
				t.Fatalf("message %s: %v", f, err)
			}
			var body io.Reader = m.Body
			if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
				body = quotedprintable.NewReader(m.Body)
			}
			text, err := io.ReadAll(body)
			_ = b.Close()
			if err != nil {
				t.Fatalf("message %s: %v", f, err)
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if err != nil {
				t.Fatalf("message %s subject: %v", f, err)
			}
			out = append(out, Received{From: m.Header.Get("From"), To: m.Header.Get("To"), Subject: subject,
				Header: m.Header, Text: strings.ReplaceAll(string(text), "\r\n", "\n")})
		}
	}
	return out
}

// Wait returns the messages to address (its bare form) once there are n,
// failing the test after 15 s.
func (r *Relay) Wait(t testing.TB, address string, n int) []Received {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var got []Received
		for _, m := range r.Messages(t) {
			if a, err := mail.ParseAddress(m.To); err == nil && strings.EqualFold(a.Address, address) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages to %s, want %d", len(got), address, n)
		}
	}
}

func selfSigned(t testing.TB, dir, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, DNSNames: []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil {
		tpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TLSConfig trusts the relay's certificate.
func (r *Relay) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: r.CAPool, MinVersion: tls.VersionTLS12}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
