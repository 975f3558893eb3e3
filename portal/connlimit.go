package portal

import (
	"net"
	"strconv"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/connlimit"
)

// tooManyConns is the answer to a connection over its address's cap, sent
// before the request is read, in the API's error shape.
var tooManyConns = func() []byte {
	body := `{"error":{"code":"rate_limited","message":"too many connections from your address at once; close some and try again"}}`
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// capPerAddress lets each client address (IPv4 or IPv6) hold at most max
// connections at once; a connection over the cap is answered 429 and
// closed. max <= 0 is no cap.
func capPerAddress(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return connlimit.PerAddress(ln, max, func(c net.Conn) { go refuseConn(c) })
}

// refuseConn answers 429 without reading the request, within a second.
func refuseConn(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(tooManyConns)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.Close()
}
