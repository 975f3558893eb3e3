package portal

import "github.com/gofiber/fiber/v2"

func (s *Server) apiForwardList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	fwds, total, err := s.store.ListPortForwards(c.UserContext(), who(c).User.Tenant(), p)
	if err != nil {
		return err
	}
	out := make([]forwardJSON, len(fwds))
	for i, f := range fwds {
		out[i] = s.toForwardJSON(f)
	}
	return c.JSON(newList(out, p, total))
}
