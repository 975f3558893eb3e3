// Package mailer sends the portal's email (sign-up confirmations and
// notices) through the ISP's SMTP relay.
package mailer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Message is one plain-text email.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Sender sends messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through one relay. smtp:// uses STARTTLS whenever the relay
// offers it and requires it before credentials are sent (except to a
// loopback relay); smtps:// speaks TLS from the start. Certificates are
// always verified.
type SMTP struct {
	addr, host string
	implicit   bool
	user, pass string
	from       mail.Address
	timeout    time.Duration
	// TLS is the client TLS configuration; nil uses the system's roots.
	TLS *tls.Config
}

// Parse reads a relay URL such as smtp://user:pass@mail.example.net:587 or
// smtps://mail.example.net, and the From address.
func Parse(raw, from string) (*SMTP, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("the SMTP relay must look like smtp://[user:password@]host[:port] or smtps://…")
	}
	f, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("the From address %q is not an email address: %w", from, err)
	}
	s := &SMTP{host: u.Hostname(), implicit: u.Scheme == "smtps", from: *f, timeout: 30 * time.Second}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "25"}[s.implicit]
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	return s, nil
}

// String names the relay without its credentials, for logs.
func (s *SMTP) String() string {
	scheme := "smtp"
	if s.implicit {
		scheme = "smtps"
	}
	return scheme + "://" + s.addr
}

// Send delivers m, or says why the relay refused it.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("recipient %q: %w", m.To, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("the subject must be one line")
	}
	body, err := s.compose(to, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tlsCfg := s.TLS.Clone()
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tlsCfg.ServerName = s.host
	var conn net.Conn
	if s.implicit {
		conn, err = (&tls.Dialer{Config: tlsCfg}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("reach the SMTP relay %s: %w", s, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("SMTP relay %s: %w", s, err)
	}
	defer c.Close()
	if err := c.Hello(helloName(s.from.Address)); err != nil {
		return fmt.Errorf("SMTP relay %s: %w", s, err)
	}
	encrypted := s.implicit
	if !encrypted {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return fmt.Errorf("SMTP relay %s: STARTTLS: %w", s, err)
			}
			encrypted = true
		}
	}
	if s.user != "" {
		if !encrypted && !isLoopback(s.host) {
			return fmt.Errorf("SMTP relay %s offers no TLS: credentials are not sent in the clear", s)
		}
		if err := c.Auth(plainAuth{s.user, s.pass}); err != nil {
			return fmt.Errorf("SMTP relay %s refused the credentials: %w", s, err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("SMTP relay %s refused the sender: %w", s, err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("SMTP relay %s refused the recipient: %w", s, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP relay %s: %w", s, err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("SMTP relay %s: %w", s, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP relay %s did not accept the message: %w", s, err)
	}
	return c.Quit()
}

func (s *SMTP) compose(to *mail.Address, m Message) ([]byte, error) {
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := helloName(s.from.Address)
	hdr := [][2]string{
		{"From", s.from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", time.Now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", "auto-generated"},
	}
	for _, h := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// helloName is the domain of the From address, which the relay sees as
// the client's name.
func helloName(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		return from[i+1:]
	}
	return "localhost"
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plainAuth is PLAIN authentication; Send has already checked the channel
// is encrypted or local.
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}
