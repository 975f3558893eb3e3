package portal

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiAdminBootSubnetCreate adds a network the DHCP server answers on.
func (s *Server) apiAdminBootSubnetCreate(c *fiber.Ctx) error {
	var req bootSubnetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	sn, err := s.store.CreateBootSubnet(ctx, s.actor(c), store.BootSubnetInput{Name: req.Name, CIDR: req.CIDR, Gateway: req.Gateway,
		DNSServers: req.DNSServers, DynamicStart: req.RangeStart, DynamicEnd: req.RangeEnd, LeaseSeconds: req.LeaseSeconds})
	if err != nil {
		return bootSubnetInputError(err)
	}
	b, err := s.loadBootSubnetState(ctx, sn, time.Now().UTC())
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toBootSubnetJSON(b))
}
