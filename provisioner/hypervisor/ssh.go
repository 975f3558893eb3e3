package hypervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshDialer reaches libvirtd's socket on a remote host through one
// long-lived SSH client (go-libvirt's own SSH dialer opens a new client on
// every dial and never closes it).
type sshDialer struct {
	client *ssh.Client
	path   string
}

func (d sshDialer) Dial() (net.Conn, error) {
	c, err := d.client.Dial("unix", d.path)
	if err != nil {
		return nil, fmt.Errorf("dial %s over ssh: %w", d.path, err)
	}
	return c, nil
}

// dialSSH opens the SSH client for a qemu+ssh URI and returns it with the
// host key it verified (or accepted on first use).
func dialSSH(ctx context.Context, u *url.URL, cfg Config) (*ssh.Client, string, error) {
	if cfg.Signer == nil {
		return nil, "", fmt.Errorf("qemu+ssh: %w: no client key", ErrInvalid)
	}
	if u.Hostname() == "" {
		return nil, "", fmt.Errorf("qemu+ssh: %w: no host in uri", ErrInvalid)
	}
	user := "root"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	addr := net.JoinHostPort(u.Hostname(), port)

	var pinned ssh.PublicKey
	if strings.TrimSpace(cfg.HostKey) != "" {
		k, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
		if err != nil {
			return nil, "", fmt.Errorf("pinned host key of %s: %w: %w", addr, ErrInvalid, err)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, "", fmt.Errorf("pinned host key of %s: %w: more than one key", addr, ErrInvalid)
		}
		pinned = k
	}
	var seen ssh.PublicKey
	hostKeyCallback := func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if pinned != nil && !bytes.Equal(key.Marshal(), pinned.Marshal()) {
			return fmt.Errorf("%w for %s: host offered %s %s, pinned key is %s %s", ErrHostKey, addr,
				key.Type(), ssh.FingerprintSHA256(key), pinned.Type(), ssh.FingerprintSHA256(pinned))
		}
		seen = key
		return nil
	}
	clientCfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
		HostKeyCallback: hostKeyCallback,
	}
	if pinned != nil {
		// Offer only the pinned key's algorithm family, so a host with
		// several keys presents the one we know.
		clientCfg.HostKeyAlgorithms = hostKeyAlgorithms(pinned)
	}

	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("ssh dial %s: %w", addr, err)
	}
	// The handshake has no context: bound it by the deadline, and cut it
	// short when ctx ends.
	if dl, ok := ctx.Deadline(); ok {
		_ = tcp.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(tcp, addr, clientCfg)
	stop()
	if err != nil {
		tcp.Close()
		if errors.Is(err, ErrHostKey) {
			return nil, "", err // already names the host and both keys
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, "", fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	_ = tcp.SetDeadline(time.Time{})
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(seen)))
	return ssh.NewClient(sc, chans, reqs), key, nil
}

// hostKeyAlgorithms lists the signature algorithms that a host key of this
// type may use.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}
