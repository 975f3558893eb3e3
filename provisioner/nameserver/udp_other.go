//go:build !linux

package nameserver

import "net"

// Elsewhere the reader takes one datagram at a time.
func newBatcher(*net.UDPConn) (batcher, bool) { return nil, false }
