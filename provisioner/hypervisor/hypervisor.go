// Package hypervisor composes virtual machines on libvirt hosts: it connects
// to a host (locally or over SSH), reports its capacity, manages VM disks in
// storage pools and drives domains through their lifecycle. It is the one
// package that talks to libvirt; every operation is idempotent so that a
// reconciler can repeat it after a crash.
package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"
)

// DefaultSocket is where libvirtd listens, on this machine and on remote hosts.
const DefaultSocket = "/var/run/libvirt/libvirt-sock"

// defaultTimeout bounds connecting when Config.Timeout is zero.
const defaultTimeout = 30 * time.Second

// ErrInvalid marks a request that is wrong in itself (a bad URI, spec or
// checksum); repeating it cannot succeed.
var ErrInvalid = errors.New("invalid")

// ErrNotFound marks a domain, storage pool or volume that does not exist.
var ErrNotFound = errors.New("not found")

// ErrHostKey marks an SSH host key that does not match the pinned one.
var ErrHostKey = errors.New("ssh host key mismatch")

// Config says how to reach one libvirt host.
type Config struct {
	// URI is test:///default or qemu:///system (the local libvirtd), or
	// qemu+ssh://user@host[:port]/system. A "socket" query parameter
	// overrides the path of libvirtd's socket on the target.
	URI string
	// HostKey pins the SSH host key of a qemu+ssh host, in authorized_keys
	// format. When empty the key offered is accepted (trust on first use)
	// and reported by Conn.HostKey, for the caller to store and pin.
	HostKey string
	// Signer is the client key for qemu+ssh.
	Signer ssh.Signer
	// Timeout bounds connecting; zero means 30 s.
	Timeout time.Duration
}

// Conn is a connection to one libvirt host. Its methods are safe for
// concurrent use.
type Conn struct {
	lv      *libvirt.Libvirt
	ssh     *ssh.Client // nil unless qemu+ssh
	hostKey string
	// simulated is set for libvirt's test driver, which keeps volumes as
	// metadata only and cannot receive uploads.
	simulated bool
	// dialer and remote open further connections to the same libvirtd
	// (through the same SSH client): a console stream gets its own.
	dialer socketDialer
	remote libvirt.ConnectURI
}

// socketDialer opens one connection to libvirtd's socket.
type socketDialer interface{ Dial() (net.Conn, error) }

// Dial connects to the libvirt host named by cfg.URI.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	u, err := url.Parse(cfg.URI)
	if err != nil {
		return nil, fmt.Errorf("parse libvirt uri: %w: %w", ErrInvalid, err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	socketPath := DefaultSocket
	if s := u.Query().Get("socket"); s != "" {
		socketPath = s
	}
	c := &Conn{simulated: u.Scheme == "test"}
	var dialer socketDialer
	switch u.Scheme {
	case "test", "qemu":
		if u.Host != "" {
			return nil, fmt.Errorf("libvirt uri %q: %w: remote hosts need qemu+ssh", cfg.URI, ErrInvalid)
		}
		dialer = localDialer{path: socketPath, timeout: timeout}
	case "qemu+ssh":
		c.ssh, c.hostKey, err = dialSSH(ctx, u, cfg)
		if err != nil {
			return nil, err
		}
		dialer = sshDialer{client: c.ssh, path: socketPath}
	default:
		return nil, fmt.Errorf("libvirt uri %q: %w: scheme %q not supported", cfg.URI, ErrInvalid, u.Scheme)
	}

	c.lv = libvirt.NewWithDialer(dialer)
	remote := libvirt.RemoteURI(u)
	c.dialer, c.remote = dialer, remote
	done := make(chan error, 1)
	go func() { done <- c.lv.ConnectToURI(remote) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
		// Close the connection should it still come up: nobody will.
		go func() {
			if <-done == nil {
				_ = c.lv.Disconnect()
			}
			_ = c.closeSSH()
		}()
		return nil, fmt.Errorf("connect to libvirt %s: %w", redact(u), err)
	}
	if err != nil {
		_ = c.closeSSH()
		return nil, fmt.Errorf("connect to libvirt %s: %w", redact(u), err)
	}
	return c, nil
}

// Close ends the libvirt connection and, for qemu+ssh, the SSH client.
func (c *Conn) Close() error {
	// Disconnect is an RPC: a host that went away (powered off, cable
	// pulled) never answers it. Closing the SSH client ends the wait.
	done := make(chan error, 1)
	go func() { done <- c.lv.Disconnect() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(closeTimeout):
		err = fmt.Errorf("libvirt did not answer the disconnect within %v", closeTimeout)
		if c.ssh == nil {
			return err
		}
	}
	if serr := c.closeSSH(); err == nil {
		err = serr
	}
	return err
}

// closeTimeout bounds the goodbye to a host's libvirt.
const closeTimeout = 5 * time.Second

func (c *Conn) closeSSH() error {
	if c.ssh == nil {
		return nil
	}
	return c.ssh.Close()
}

// HostKey returns the SSH host key of a qemu+ssh host in authorized_keys
// format (the pinned key, or the one accepted on first use), or "" for a
// local connection.
func (c *Conn) HostKey() string { return c.hostKey }

// localDialer dials libvirtd's unix socket on this machine.
type localDialer struct {
	path    string
	timeout time.Duration
}

func (d localDialer) Dial() (net.Conn, error) {
	return net.DialTimeout("unix", d.path, d.timeout)
}

// redact drops credentials from a URI before it goes into an error.
func redact(u *url.URL) string {
	v := *u
	if v.User != nil {
		v.User = url.User(v.User.Username())
	}
	return v.String()
}

// do runs one go-libvirt call, which takes no context, and returns early
// with ctx's error when ctx ends first. The call itself then finishes in the
// background and its result is dropped; every operation here is idempotent,
// so the caller's retry observes whatever it did.
func do[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// do0 is do for calls that return only an error.
func do0(ctx context.Context, f func() error) error {
	_, err := do(ctx, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// isCode reports whether err is a libvirt error with one of these codes.
func isCode(err error, codes ...libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	if !errors.As(err, &lerr) {
		return false
	}
	for _, c := range codes {
		if lerr.Code == uint32(c) {
			return true
		}
	}
	return false
}

// cstring converts NodeGetInfo's fixed-size C string.
func cstring(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}
