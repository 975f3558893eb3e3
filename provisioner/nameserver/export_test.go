package nameserver

import (
	"net/netip"
	"time"
)

// AnswerUDP exposes the fast path to the tests, which compare it with
// ServeDNS; the reply is appended to dst.
func (s *Server) AnswerUDP(dst, q []byte, src netip.Addr) ([]byte, bool) {
	return s.answerUDP(dst, q, src)
}

// SetRRLClock gives the rate limiter another clock; call it before Serve.
func (s *Server) SetRRLClock(now func() time.Time) { s.rrl.setClock(now) }
