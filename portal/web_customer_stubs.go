package portal

import "github.com/gofiber/fiber/v2"

// Handlers not written yet; each is replaced by a real one in its own file.

func (s *Server) webAccount(c *fiber.Ctx) error          { return fiber.ErrNotImplemented }
func (s *Server) webAudit(c *fiber.Ctx) error            { return fiber.ErrNotImplemented }
func (s *Server) webDashboard(c *fiber.Ctx) error        { return fiber.ErrNotImplemented }
func (s *Server) webInvitationCreate(c *fiber.Ctx) error { return fiber.ErrNotImplemented }
func (s *Server) webInvitationDelete(c *fiber.Ctx) error { return fiber.ErrNotImplemented }
func (s *Server) webMemberDelete(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) webMemberRole(c *fiber.Ctx) error       { return fiber.ErrNotImplemented }
func (s *Server) webPasswordChange(c *fiber.Ctx) error   { return fiber.ErrNotImplemented }
func (s *Server) webSSHKeyCreate(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) webSSHKeyDelete(c *fiber.Ctx) error     { return fiber.ErrNotImplemented }
func (s *Server) webSSHKeyList(c *fiber.Ctx) error       { return fiber.ErrNotImplemented }
func (s *Server) webTokenCreate(c *fiber.Ctx) error      { return fiber.ErrNotImplemented }
func (s *Server) webTokenDelete(c *fiber.Ctx) error      { return fiber.ErrNotImplemented }
func (s *Server) webTokenList(c *fiber.Ctx) error        { return fiber.ErrNotImplemented }
func (s *Server) webVMAction(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) webVMCreate(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) webVMDelete(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) webVMDetail(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
func (s *Server) webVMList(c *fiber.Ctx) error           { return fiber.ErrNotImplemented }
func (s *Server) webVMNew(c *fiber.Ctx) error            { return fiber.ErrNotImplemented }
func (s *Server) webVMStatus(c *fiber.Ctx) error         { return fiber.ErrNotImplemented }
