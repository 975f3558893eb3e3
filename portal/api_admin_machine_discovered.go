package portal

import "github.com/gofiber/fiber/v2"

// apiAdminMachineDiscovered lists MACs that PXE-booted on a managed subnet
// without being enlisted, most recently seen first.
func (s *Server) apiAdminMachineDiscovered(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	ds, total, err := s.store.ListDiscovered(c.UserContext(), p)
	if err != nil {
		return err
	}
	items := make([]discoveredJSON, len(ds))
	for i, d := range ds {
		items[i] = toDiscoveredJSON(d)
	}
	return c.JSON(newList(items, p, total))
}
