package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// webTokenCreate shows the new token on the page it answers with, once: it
// is never put in a cookie or a redirect.
func (s *Server) webTokenCreate(c *fiber.Ctx) error {
	name, scope := c.FormValue("name"), c.FormValue("scope")
	raw, err := s.createToken(c, name, scope)
	if err != nil {
		errs, err := formFailure(c, err, "name", "scope")
		if err != nil {
			return err
		}
		v, err := s.tokensView(c)
		if err != nil {
			return err
		}
		v.Errors, v.Name, v.Scope = errs, name, scope
		return s.render(c, views.Tokens(v))
	}
	v, err := s.tokensView(c)
	if err != nil {
		return err
	}
	v.NewToken = raw
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, views.Tokens(v))
}

// createToken issues a token that can do no more than its owner's role
// allows: read-only members and auditors get read tokens only.
func (s *Server) createToken(c *fiber.Ctx, name, scope string) (string, error) {
	id := who(c)
	if scope == store.ScopeWrite && !id.canWriteTenant() && !id.canOperate() {
		return "", store.E(store.ErrForbidden, "scope", "your role allows reading only, so you can create read tokens only")
	}
	_, raw, err := s.store.CreateAPIToken(c.UserContext(), s.actor(c), id.User.ID, name, scope)
	return raw, err
}
