package portal

import "github.com/gofiber/fiber/v2"

// Handlers not written yet; each is replaced by a real one in its own file.

func (s *Server) webAdminAudit(c *fiber.Ctx) error           { return fiber.ErrNotImplemented }
func (s *Server) webAdminHome(c *fiber.Ctx) error            { return fiber.ErrNotImplemented }
func (s *Server) webAdminImageCreate(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) webAdminImageEdit(c *fiber.Ctx) error       { return fiber.ErrNotImplemented }
func (s *Server) webAdminImageList(c *fiber.Ctx) error       { return fiber.ErrNotImplemented }
func (s *Server) webAdminImageUpdate(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) webAdminPlanCreate(c *fiber.Ctx) error      { return fiber.ErrNotImplemented }
func (s *Server) webAdminPlanEdit(c *fiber.Ctx) error        { return fiber.ErrNotImplemented }
func (s *Server) webAdminPlanList(c *fiber.Ctx) error        { return fiber.ErrNotImplemented }
func (s *Server) webAdminPlanUpdate(c *fiber.Ctx) error      { return fiber.ErrNotImplemented }
func (s *Server) webAdminQuotas(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) webAdminQuotasUpdate(c *fiber.Ctx) error    { return fiber.ErrNotImplemented }
func (s *Server) webAdminTenant(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) webAdminTenantList(c *fiber.Ctx) error      { return fiber.ErrNotImplemented }
func (s *Server) webAdminTenantQuota(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) webAdminTenantSuspend(c *fiber.Ctx) error   { return fiber.ErrNotImplemented }
func (s *Server) webAdminTenantUnsuspend(c *fiber.Ctx) error { return fiber.ErrNotImplemented }
func (s *Server) webAdminUserCreate(c *fiber.Ctx) error      { return fiber.ErrNotImplemented }
func (s *Server) webAdminUserList(c *fiber.Ctx) error        { return fiber.ErrNotImplemented }
func (s *Server) webAdminVMList(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
