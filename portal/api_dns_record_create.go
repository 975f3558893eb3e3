package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type dnsRecordCreateRequest struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	TTL      int    `json:"ttl"`      // 0 or absent: the default
	Priority int    `json:"priority"` // MX only
}

func (s *Server) apiDNSRecordCreate(c *fiber.Ctx) error {
	var req dnsRecordCreateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r, err := s.store.CreateDNSRecord(c.UserContext(), s.actor(c), who(c).User.Tenant(), store.DNSRecordInput{
		Name: req.Name, Type: req.Type, Value: req.Value, TTL: req.TTL, Priority: req.Priority,
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(s.toDNSRecordJSON(r, who(c).Tenant.Slug))
}
