// Package views renders the portal's HTML pages from plain view structs.
// It imports neither the database layer nor the HTTP framework.
package views

import (
	"fmt"
	"net/url"
	"strconv"
)

// Page carries what every full page needs: title, navigation, the signed-in
// user, the CSRF token for forms and an optional flash message.
type Page struct {
	Title   string
	Section string // highlighted navigation entry, e.g. "dashboard", "vms", "admin-tenants"
	User    *User  // nil when nobody is signed in
	CSRF    string
	Flash   *Flash
}

// User is the signed-in person as the layout shows them.
type User struct {
	Email      string
	TenantName string // empty for staff
	Role       string // owner | member | readonly | admin | operator | auditor
	Staff      bool
}

// CanWrite reports whether the user may change tenant resources.
func (u *User) CanWrite() bool { return u != nil && (u.Role == "owner" || u.Role == "member") }

// CanWriteTokens reports whether the user may create read-write API tokens:
// tenant owners and members, staff admins and operators.
func (u *User) CanWriteTokens() bool {
	return u != nil && (u.Role == "owner" || u.Role == "member" || u.Role == "admin" || u.Role == "operator")
}

// CanAdmin reports whether a staff user may change platform settings.
func (u *User) CanAdmin() bool { return u != nil && u.Staff && u.Role == "admin" }

// CanOperate reports whether a staff user may change tenants and resources.
func (u *User) CanOperate() bool {
	return u != nil && u.Staff && (u.Role == "admin" || u.Role == "operator")
}

// Flash is a one-shot message shown at the top of a page.
type Flash struct {
	Kind    string // success | error | info
	Message string
}

// FormErrors maps a form field name to the message shown beside it.
// The key "" holds an error about the form as a whole.
type FormErrors map[string]string

// Pager describes one page of a paginated list.
type Pager struct {
	Page    int        // 1-based
	PerPage int        //
	Total   int        // number of items over all pages
	Path    string     // e.g. "/admin/audit"
	Query   url.Values // filters to keep when paging (without "page")
}

// Pages is the number of pages, at least 1.
func (p Pager) Pages() int {
	if p.PerPage <= 0 || p.Total <= 0 {
		return 1
	}
	return (p.Total + p.PerPage - 1) / p.PerPage
}

// URL returns the link to page n with the current filters.
func (p Pager) URL(n int) string {
	q := url.Values{}
	for k, v := range p.Query {
		q[k] = v
	}
	q.Set("page", strconv.Itoa(n))
	return p.Path + "?" + q.Encode()
}

// Summary is "Showing a–b of n".
func (p Pager) Summary() string {
	if p.Total == 0 {
		return "Nothing to show"
	}
	from := (p.Page-1)*p.PerPage + 1
	to := from + p.PerPage - 1
	if to > p.Total {
		to = p.Total
	}
	return fmt.Sprintf("Showing %d–%d of %d", from, to, p.Total)
}
