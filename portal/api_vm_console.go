package portal

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// Consoles opens a running VM's serial console: reading returns what the
// guest prints, writing types into it. The provisioner implements it; its
// errors are store errors (ErrInvalidTransition: the VM does not run;
// ErrConflict: another session holds the console).
type Consoles interface {
	OpenConsole(ctx context.Context, vmID string) (io.ReadWriteCloser, error)
}

// consoleSessions counts open console sessions per VM, so that one VM has
// at most maxConsoleSessions (libvirt itself allows one stream per console).
type consoleSessions struct {
	mu   sync.Mutex
	open map[string]int
}

const maxConsoleSessions = 1

func (cs *consoleSessions) take(vmID string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.open == nil {
		cs.open = map[string]int{}
	}
	if cs.open[vmID] >= maxConsoleSessions {
		return false
	}
	cs.open[vmID]++
	return true
}

func (cs *consoleSessions) release(vmID string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.open[vmID]--; cs.open[vmID] <= 0 {
		delete(cs.open, vmID)
	}
}

// consoleElsewhere is the answer of a portal-only process.
var consoleElsewhere = &httpError{status: fiber.StatusServiceUnavailable, code: "console_unavailable", public: true,
	message: "the console is served by fibrix processes that also run the provisioner role (--roles portal,provisioner); this one runs the portal alone"}

// consoleWriteWait bounds sending one message to a slow browser.
const consoleWriteWait = 10 * time.Second

type consoleSession struct {
	con    io.ReadWriteCloser
	actor  store.Actor
	target store.Target
}

// apiVMConsole upgrades to a WebSocket joined to the VM's serial console
// (bearer tokens; the VM page's terminal uses webVMConsoleSocket). Binary
// or text messages from the client are keystrokes; binary messages from the
// server are the guest's output.
func (s *Server) apiVMConsole(c *fiber.Ctx) error {
	return s.vmConsole(c)
}

// webVMConsoleSocket is apiVMConsole for the console page, signed in by the
// session cookie. A cookie rides along on a WebSocket opened by any site,
// so the upgrade must come from a page of this origin.
func (s *Server) webVMConsoleSocket(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return errForbidden("a console WebSocket opened with the session cookie must carry the Origin of this portal")
	}
	if reason := crossOrigin(c); reason != "" {
		s.logger(c).Warn("refused cross-origin console", "reason", reason)
		return &httpError{status: fiber.StatusForbidden, code: "cross_origin", message: "the console was opened from another site; open it from the VM page"}
	}
	return s.vmConsole(c)
}

// vmConsole checks everything that can be answered with a status before
// upgrading: the VM is the tenant's (404), the tenant is active (403), the
// VM runs (409), a console can be served here (503) and is free (409).
func (s *Server) vmConsole(c *fiber.Ctx) error {
	ctx, id := c.UserContext(), who(c)
	vmID := strings.Clone(c.Params("id"))
	vm, err := s.store.GetVM(ctx, id.User.Tenant(), vmID)
	if err != nil {
		return err
	}
	a := s.actor(c)
	a.IP = strings.Clone(a.IP)
	t := store.Target{Type: "vm", ID: vm.ID, Name: vm.Name, TenantID: vm.TenantID}
	refuse := func(err error) error {
		detail := err.Error()
		if e, ok := store.AsError(err); ok {
			detail = e.Message
		}
		_ = s.store.RecordAudit(ctx, a, "vm.console", &t, store.ResultFailure, detail)
		return err
	}
	if id.Tenant != nil && id.Tenant.Status == store.TenantSuspended {
		return refuse(store.E(store.ErrSuspended, "", "this account is suspended"))
	}
	if vm.State != store.VMRunning {
		return refuse(store.E(store.ErrInvalidTransition, "", "the console is there while the VM runs; it is "+vm.State))
	}
	if s.cfg.Consoles == nil {
		return consoleElsewhere
	}
	if !websocket.IsWebSocketUpgrade(c) {
		return &httpError{status: fiber.StatusUpgradeRequired, code: "upgrade_required",
			message: "the console is a WebSocket: send the request with Connection: Upgrade and Upgrade: websocket"}
	}
	if !s.consoles.take(vm.ID) {
		return refuse(store.E(store.ErrConflict, "", "a console session is already open for this VM; close it or wait until it ends"))
	}
	con, err := s.cfg.Consoles.OpenConsole(ctx, vm.ID)
	if err != nil {
		s.consoles.release(vm.ID)
		if _, ok := store.AsError(err); ok {
			return refuse(err)
		}
		s.logger(c).Error("open console", "vm", vm.ID, "err", err)
		_ = s.store.RecordAudit(ctx, a, "vm.console", &t, store.ResultFailure, "the VM's host did not open its console")
		return &httpError{status: fiber.StatusBadGateway, code: "console_failed", public: true,
			message: "the VM's host did not open its console; try again in a moment"}
	}
	if err := s.store.RecordAudit(ctx, a, "vm.console", &t, store.ResultSuccess, "session opened"); err != nil {
		_ = con.Close()
		s.consoles.release(vm.ID)
		return err
	}
	return s.consoleUpgrade(c, &consoleSession{con: con, actor: a, target: t})
}

// consoleUpgrade is the WebSocket side of vmConsole.
func (s *Server) consoleUpgrade(c *fiber.Ctx, sess *consoleSession) error {
	err := websocket.New(func(ws *websocket.Conn) { s.relayConsole(ws, sess) })(c)
	if err != nil {
		// The handshake failed: nothing will relay.
		_ = sess.con.Close()
		s.consoles.release(sess.target.ID)
		_ = s.store.RecordAudit(c.UserContext(), sess.actor, "vm.console_closed", &sess.target, store.ResultFailure, "the WebSocket handshake failed")
	}
	return err
}

// relayConsole copies between the browser and the console until either
// ends or no key was typed for ConsoleIdle, then audits the session.
func (s *Server) relayConsole(ws *websocket.Conn, sess *consoleSession) {
	start := time.Now()
	defer s.consoles.release(sess.target.ID)
	_ = ws.SetReadDeadline(time.Time{})
	var wmu sync.Mutex
	send := func(typ int, b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = ws.SetWriteDeadline(time.Now().Add(consoleWriteWait))
		return ws.WriteMessage(typ, b)
	}
	var toClient, typed atomic.Int64
	ended := make(chan string, 2)
	go func() { // guest → browser
		buf := make([]byte, 8<<10)
		for {
			n, err := sess.con.Read(buf)
			if n > 0 {
				toClient.Add(int64(n))
				if send(websocket.BinaryMessage, buf[:n]) != nil {
					ended <- "the browser went away"
					return
				}
			}
			if err != nil {
				ended <- "the console stream ended"
				return
			}
		}
	}()
	input := make(chan struct{}, 1)
	go func() { // browser → guest
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				ended <- "closed by the client"
				return
			}
			typed.Add(int64(len(msg)))
			select {
			case input <- struct{}{}:
			default:
			}
			if _, err := sess.con.Write(msg); err != nil {
				ended <- "the console stream ended"
				return
			}
		}
	}()
	idle := time.NewTimer(s.cfg.ConsoleIdle)
	defer idle.Stop()
	var why string
wait:
	for {
		select {
		case <-input:
			idle.Reset(s.cfg.ConsoleIdle)
		case why = <-ended:
			break wait
		case <-idle.C:
			why = fmt.Sprintf("idle for %v", s.cfg.ConsoleIdle)
			msg := fmt.Sprintf("\r\n[console closed: no input for %v]\r\n", s.cfg.ConsoleIdle)
			_ = send(websocket.BinaryMessage, []byte(msg))
			wmu.Lock()
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, "no input for "+s.cfg.ConsoleIdle.String()),
				time.Now().Add(time.Second))
			wmu.Unlock()
			break wait
		}
	}
	_ = sess.con.Close()
	_ = ws.Close()
	detail := fmt.Sprintf("session closed (%s) after %v; %d bytes shown, %d typed",
		why, time.Since(start).Round(time.Second), toClient.Load(), typed.Load())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.RecordAudit(ctx, sess.actor, "vm.console_closed", &sess.target, store.ResultSuccess, detail); err != nil {
		s.log.Error("audit console close", "vm", sess.target.ID, "err", err)
	}
}
