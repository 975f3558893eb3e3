package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiVMGet(c *fiber.Ctx) error {
	d, err := s.store.GetVM(c.UserContext(), who(c).User.Tenant(), c.Params("id"))
	if err != nil {
		return err
	}
	out := toVMDetailJSON(d)
	if out.DNSName, err = s.vmDNSName(c, d.VMSummary); err != nil {
		return err
	}
	return c.JSON(out)
}
