package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/fibrixcloud/fibrix/provisioner/gateway"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// startGateway runs the SSH gateway in g. Its host key lives in the
// database so that every gateway process presents the same one across
// restarts, and customers' known_hosts stay valid.
func startGateway(ctx context.Context, g *errgroup.Group, st *store.Store, listen, zone string, log *slog.Logger) error {
	if listen == "" {
		return nil
	}
	var genErr error
	pemKey, err := st.Secret(ctx, "ssh_gateway_host_key", func() string {
		k, err := gateway.GenerateHostKey()
		genErr = err
		return string(k)
	})
	if err != nil {
		return err
	}
	if genErr != nil {
		return genErr
	}
	srv, err := gateway.New(gateway.Config{Listen: listen, Zone: zone, HostKeyPEM: []byte(pemKey)}, st, log.With("component", "ssh-gateway"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("ssh gateway: listen on %s: %w", listen, err)
	}
	if err := st.SetSetting(ctx, store.SettingGatewayFingerprint, srv.HostKeyFingerprint()); err != nil {
		ln.Close()
		return err
	}
	g.Go(func() error { return srv.Serve(ctx, ln) })
	log.Info("ssh gateway listening", "listen", ln.Addr().String(), "host_key", srv.HostKeyFingerprint())
	return nil
}
