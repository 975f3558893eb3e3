package portal

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminMachineList lists machines by name, optionally in one state.
func (s *Server) apiAdminMachineList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	state := c.Query("state")
	if state != "" && !slices.Contains(store.MachineStates(), state) {
		return &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: "state", message: "unknown machine state"}
	}
	ms, total, err := s.store.ListMachines(c.UserContext(), p, state)
	if err != nil {
		return err
	}
	items := make([]machineJSON, len(ms))
	for i, m := range ms {
		items[i] = toMachineJSON(m.Machine, m.MACs)
	}
	return c.JSON(newList(items, p, total))
}
