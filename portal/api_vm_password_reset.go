package portal

import (
	"crypto/rand"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/shacrypt"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type vmPasswordResetJSON struct {
	Password  string        `json:"password"`
	Operation operationJSON `json:"operation"`
}

// apiVMPasswordReset gives the VM's default user a new console password,
// answered once and never stored in clear; the VM reboots to take it.
func (s *Server) apiVMPasswordReset(c *fiber.Ctx) error {
	pw, op, err := s.resetVMPassword(c, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusAccepted).JSON(vmPasswordResetJSON{Password: pw, Operation: toOperationJSON(op)})
}

// resetVMPassword makes a password, has the store record its hash and
// queue the reboot, and returns the password for the one answer that shows it.
func (s *Server) resetVMPassword(c *fiber.Ctx, vmID string) (string, store.Operation, error) {
	pw, err := consolePassword()
	if err != nil {
		return "", store.Operation{}, err
	}
	hash, err := shacrypt.Hash(pw)
	if err != nil {
		return "", store.Operation{}, err
	}
	op, err := s.store.ResetVMPassword(c.UserContext(), s.actor(c), who(c).User.Tenant(), vmID, hash)
	if err != nil {
		return "", store.Operation{}, err
	}
	return pw, op, nil
}

// consoleAlphabet leaves out characters read or typed for one another
// (0/O, 1/l/I) and keeps to letters and digits, which every keyboard
// layout and terminal passes through unchanged.
const consoleAlphabet = "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"

// consolePasswordLen gives about 117 bits.
const consolePasswordLen = 20

func consolePassword() (string, error) {
	out := make([]byte, consolePasswordLen)
	buf := make([]byte, 1)
	// Rejection sampling: bytes at or above the largest multiple of the
	// alphabet's size are drawn again, so every character is equally likely.
	limit := 256 - 256%len(consoleAlphabet)
	for i := 0; i < len(out); {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate console password: %w", err)
		}
		if int(buf[0]) < limit {
			out[i] = consoleAlphabet[int(buf[0])%len(consoleAlphabet)]
			i++
		}
	}
	return string(out), nil
}
