package portal

import "github.com/gofiber/fiber/v2"

// apiVMReverseDNSGet tells the PTR name of the VM's address.
func (s *Server) apiVMReverseDNSGet(c *fiber.Ctx) error {
	r, err := s.store.GetReverseDNS(c.UserContext(), who(c).User.Tenant(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(s.toReverseDNSJSON(r, who(c).Tenant.Slug))
}
