package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func (s *Server) apiAdminSubnetCreate(c *fiber.Ctx) error {
	var req subnetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	sn, err := s.store.CreateSubnet(ctx, s.actor(c), store.SubnetInput{Name: req.Name, CIDR: req.CIDR, Gateway: req.Gateway,
		DNSServers: req.DNSServers, RangeStart: req.RangeStart, RangeEnd: req.RangeEnd})
	if err != nil {
		return err
	}
	sum, err := s.subnet(c, sn.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(toSubnetJSON(sum))
}

// subnet finds one subnet with its usage.
func (s *Server) subnet(c *fiber.Ctx, id string) (store.SubnetSummary, error) {
	subnets, err := s.store.ListSubnets(c.UserContext())
	if err != nil {
		return store.SubnetSummary{}, err
	}
	for _, sn := range subnets {
		if sn.ID == id {
			return sn, nil
		}
	}
	return store.SubnetSummary{}, errNotFound("subnet")
}
