package portal

import "github.com/gofiber/fiber/v2"

// vmUpdateRequest changes what of a VM the forwarder publishes; an absent
// setting stays as it is.
type vmUpdateRequest struct {
	ExposeHTTP    *bool `json:"expose_http"`
	ExposeHTTPS   *bool `json:"expose_https"`
	ProxyProtocol *bool `json:"proxy_protocol"`
}

func (s *Server) apiVMUpdate(c *fiber.Ctx) error {
	var req vmUpdateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx, tenant, id := c.UserContext(), who(c).User.Tenant(), c.Params("id")
	ex, err := s.store.SetVMExposure(ctx, s.actor(c), tenant, id, req.ExposeHTTP, req.ExposeHTTPS, req.ProxyProtocol)
	if err != nil {
		return err
	}
	d, err := s.store.GetVM(ctx, tenant, id)
	if err != nil {
		return err
	}
	out := vmExposedJSON{vmJSON: toVMDetailJSON(d).vmJSON, Exposure: exposureJSON{HTTP: ex.HTTP, HTTPS: ex.HTTPS, ProxyProtocol: ex.ProxyProtocol}}
	if out.DNSName, err = s.vmDNSName(c, d.VMSummary); err != nil {
		return err
	}
	return c.JSON(out)
}
