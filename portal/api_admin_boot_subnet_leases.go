package portal

import (
	"slices"

	"github.com/gofiber/fiber/v2"
)

// apiAdminBootSubnetLeases lists a boot subnet's leases by address,
// optionally only those in one state. The store reads them all; a page of
// them is cut here.
func (s *Server) apiAdminBootSubnetLeases(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	state := c.Query("state")
	if state != "" && !slices.Contains(leaseStates(), state) {
		return &httpError{status: fiber.StatusBadRequest, code: "bad_request", field: "state", message: "state must be active, expired or declined"}
	}
	b, err := s.bootSubnetOf(c)
	if err != nil {
		return err
	}
	all := make([]leaseJSON, 0, len(b.Leases))
	for _, l := range b.Leases {
		if j := b.toLeaseJSON(l); state == "" || j.State == state {
			all = append(all, j)
		}
	}
	return c.JSON(newList(pageOfSlice(all, p), p, len(all)))
}
