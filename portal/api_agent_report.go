package portal

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAgentReport receives what a machine's boot environment found or did.
// There is no session: the one-time token in the body authenticates, and an
// unknown, spent or misdirected token is a plain 404.
func (s *Server) apiAgentReport(c *fiber.Ctx) error {
	var r inventory.Report
	if err := decodeJSON(c, &r); err != nil {
		return err
	}
	if err := inventory.Validate(r); err != nil {
		return &httpError{status: fiber.StatusUnprocessableEntity, code: "invalid", message: strings.TrimPrefix(err.Error(), inventory.ErrInvalid.Error()+": ")}
	}
	res := store.AgentResult{Mode: r.Mode, MAC: r.MAC, OK: r.Status == inventory.StatusOK, Message: r.Message, Wiped: r.Wiped, SourceIP: c.IP(), Log: strings.Join(r.Log, "\n")}
	if inv := r.Inventory; inv != nil {
		b, err := json.Marshal(inv)
		if err != nil {
			return err
		}
		res.Inventory, res.CPUModel, res.Cores, res.MemoryMiB = string(b), inv.CPU.Model, int64(inv.CPU.Cores), inv.MemoryMiB
	}
	if d := r.Deploy; d != nil {
		res.SSHHostKey = d.SSHHostKey
		res.Deployed = d.Disk + ", " + store.FormatMiB(d.BytesWritten>>20) + " written"
		if d.SHA256 != "" {
			res.Deployed += ", sha256 " + d.SHA256[:12] + "…"
		}
	}
	if _, err := s.store.AgentReportResult(c.UserContext(), r.Token, res); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound("agent token")
		}
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
