package portal

import "github.com/gofiber/fiber/v2"

// Handlers not written yet; each is replaced by a real one in its own file.

func (s *Server) apiAdminAudit(c *fiber.Ctx) error               { return fiber.ErrNotImplemented }
func (s *Server) apiAdminImageCreate(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) apiAdminImageList(c *fiber.Ctx) error           { return fiber.ErrNotImplemented }
func (s *Server) apiAdminImageUpdate(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) apiAdminPlanCreate(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) apiAdminPlanList(c *fiber.Ctx) error            { return fiber.ErrNotImplemented }
func (s *Server) apiAdminPlanUpdate(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) apiAdminQuotaDefaults(c *fiber.Ctx) error       { return fiber.ErrNotImplemented }
func (s *Server) apiAdminQuotaDefaultsUpdate(c *fiber.Ctx) error { return fiber.ErrNotImplemented }
func (s *Server) apiAdminTenantGet(c *fiber.Ctx) error           { return fiber.ErrNotImplemented }
func (s *Server) apiAdminTenantList(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) apiAdminTenantQuota(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) apiAdminTenantSuspend(c *fiber.Ctx) error       { return fiber.ErrNotImplemented }
func (s *Server) apiAdminTenantUnsuspend(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) apiAdminUserCreate(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) apiAdminUserList(c *fiber.Ctx) error            { return fiber.ErrNotImplemented }
func (s *Server) apiAdminVMList(c *fiber.Ctx) error              { return fiber.ErrNotImplemented }
func (s *Server) apiAudit(c *fiber.Ctx) error                    { return fiber.ErrNotImplemented }
func (s *Server) apiImageList(c *fiber.Ctx) error                { return fiber.ErrNotImplemented }
func (s *Server) apiOpenAPI(c *fiber.Ctx) error                  { return fiber.ErrNotImplemented }
func (s *Server) apiPlanList(c *fiber.Ctx) error                 { return fiber.ErrNotImplemented }
func (s *Server) apiQuota(c *fiber.Ctx) error                    { return fiber.ErrNotImplemented }
func (s *Server) apiSSHKeyCreate(c *fiber.Ctx) error             { return fiber.ErrNotImplemented }
func (s *Server) apiSSHKeyDelete(c *fiber.Ctx) error             { return fiber.ErrNotImplemented }
func (s *Server) apiSSHKeyGet(c *fiber.Ctx) error                { return fiber.ErrNotImplemented }
func (s *Server) apiSSHKeyList(c *fiber.Ctx) error               { return fiber.ErrNotImplemented }
func (s *Server) apiVMAction(c *fiber.Ctx) error                 { return fiber.ErrNotImplemented }
func (s *Server) apiVMCreate(c *fiber.Ctx) error                 { return fiber.ErrNotImplemented }
func (s *Server) apiVMDelete(c *fiber.Ctx) error                 { return fiber.ErrNotImplemented }
func (s *Server) apiVMGet(c *fiber.Ctx) error                    { return fiber.ErrNotImplemented }
func (s *Server) apiVMList(c *fiber.Ctx) error                   { return fiber.ErrNotImplemented }
