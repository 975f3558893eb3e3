package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) tokensView(c *fiber.Ctx) (views.TokensView, error) {
	toks, err := s.store.ListAPITokens(c.UserContext(), who(c).User.ID)
	if err != nil {
		return views.TokensView{}, err
	}
	v := views.TokensView{Page: s.page(c, "API tokens", "tokens")}
	for _, t := range toks {
		v.Tokens = append(v.Tokens, views.TokenRow{ID: t.ID, Name: t.Name, Scope: t.Scope, Prefix: t.Prefix,
			CreatedAt: t.CreatedAt, LastUsedAt: deref(t.LastUsedAt)})
	}
	return v, nil
}

func (s *Server) webTokenList(c *fiber.Ctx) error {
	v, err := s.tokensView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.Tokens(v))
}
