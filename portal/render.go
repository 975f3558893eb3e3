package portal

import (
	"net/url"
	"slices"
	"strconv"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func itoa(n int) string { return strconv.Itoa(n) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// render writes a templ component as the HTML response.
func (s *Server) render(c *fiber.Ctx, comp templ.Component) error {
	c.Type("html", "utf-8")
	return comp.Render(c.UserContext(), c.Response().BodyWriter())
}

// page builds what every full page needs.
func (s *Server) page(c *fiber.Ctx, title, section string) views.Page {
	p := views.Page{Title: title, Section: section, Flash: s.takeFlash(c)}
	p.CSRF, _ = c.Locals(localCSRF).(string)
	if id := who(c); id != nil {
		p.User = &views.User{Email: id.User.Email, Role: id.User.Role, Staff: id.staff()}
		if id.Tenant != nil {
			p.User.TenantName = id.Tenant.Name
			if id.Tenant.Status == store.TenantSuspended && p.Flash == nil {
				msg := "Your account is suspended; you can look but not change anything."
				if id.Tenant.SuspendReason != "" {
					msg = "Your account is suspended (" + id.Tenant.SuspendReason + "); you can look but not change anything."
				}
				p.Flash = &views.Flash{Kind: "error", Message: msg}
			}
		}
	}
	return p
}

// redirect sends the browser on with a flash message.
func (s *Server) redirect(c *fiber.Ctx, to, kind, msg string) error {
	if msg != "" {
		s.flash(c, kind, msg)
	}
	return c.Redirect(to, fiber.StatusSeeOther)
}

// formFailure turns a refusal into inline form errors and sets the response
// status. A message about a field the form does not show goes to the form as
// a whole. Errors that are not about the input are returned for the error page.
func formFailure(c *fiber.Ctx, err error, fields ...string) (views.FormErrors, error) {
	he := classify(err)
	if he.status >= 500 || he.status == fiber.StatusNotFound || he.status == fiber.StatusUnauthorized {
		return nil, err
	}
	c.Status(he.status)
	if !slices.Contains(fields, he.field) {
		return views.FormErrors{"": he.message}, nil
	}
	return views.FormErrors{he.field: he.message}, nil
}

// pageOf reads ?page= and ?per_page= from the query.
func pageOf(c *fiber.Ctx) store.Page {
	return store.Page{Number: c.QueryInt("page", 1), PerPage: c.QueryInt("per_page", store.DefaultPerPage)}
}

// pager describes the current page for the views.
func pager(c *fiber.Ctx, p store.Page, total int, keep ...string) views.Pager {
	q := url.Values{}
	for _, k := range keep {
		if v := c.Query(k); v != "" {
			q.Set(k, v)
		}
	}
	if p.PerPage <= 0 {
		p.PerPage = store.DefaultPerPage
	}
	if p.Number < 1 {
		p.Number = 1
	}
	return views.Pager{Page: p.Number, PerPage: min(p.PerPage, store.MaxPerPage), Total: total, Path: c.Path(), Query: q}
}
