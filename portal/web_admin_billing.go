package portal

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func (s *Server) adminBillingView(c *fiber.Ctx) (views.AdminBillingView, error) {
	ctx := c.UserContext()
	b, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return views.AdminBillingView{}, err
	}
	now := time.Now().UTC()
	v := views.AdminBillingView{Page: s.page(c, "Billing", "admin-billing"), Currency: b.Currency, VATRate: vatRate(b.VATBP),
		LastMonth: store.MonthOf(now.AddDate(0, 0, -now.Day())), BillStopped: true}
	plans, err := s.store.ListPlans(ctx, false)
	if err != nil {
		return v, err
	}
	label := map[string]string{store.ItemPortForward: "Port forwards", store.ItemSnapshotGiB: "Snapshots, per GiB"}
	for _, p := range plans {
		label[store.PlanItem(p.ID)] = "Plan " + p.Name
		v.Items = append(v.Items, views.ItemOption{Value: store.PlanItem(p.ID), Label: "Plan " + p.Name})
	}
	v.Items = append(v.Items, views.ItemOption{Value: store.ItemPortForward, Label: "Port forwards"},
		views.ItemOption{Value: store.ItemSnapshotGiB, Label: "Snapshots, per GiB"})
	prices, err := s.store.Prices(ctx)
	if err != nil {
		return v, err
	}
	current := map[string]string{}
	for _, p := range prices {
		if !p.EffectiveFrom.After(now) {
			current[p.Item] = p.ID
		}
	}
	for _, p := range prices {
		price, _ := priceText(p, b.Currency, b.VATBP)
		v.Prices = append(v.Prices, views.PriceRow{Item: label[p.Item], Price: price,
			EffectiveFrom: p.EffectiveFrom.UTC().Format("2006-01-02 15:04"), Current: current[p.Item] == p.ID})
	}
	od, err := s.store.OverdueTenants(ctx)
	if err != nil {
		return v, err
	}
	for _, o := range od {
		r := views.OverdueRow{TenantID: o.TenantID, Name: o.Name, Balance: o.Balance.Balance.String()}
		if o.Balance.CreditLimit != nil {
			r.Limit = o.Balance.CreditLimit.String()
		}
		v.Overdue = append(v.Overdue, r)
	}
	list, _, err := s.store.ListInvoices(ctx, "", store.Page{PerPage: 20})
	if err != nil {
		return v, err
	}
	v.Invoices = invoiceRows(list)
	return v, nil
}

func (s *Server) webAdminBilling(c *fiber.Ctx) error {
	v, err := s.adminBillingView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminBilling(v))
}

// adminBillingFailed shows the page again with the refusal.
func (s *Server) adminBillingFailed(c *fiber.Ctx, err error, fill func(*views.AdminBillingView), fields ...string) error {
	v, verr := s.adminBillingView(c)
	if verr != nil {
		return verr
	}
	if fill != nil {
		fill(&v)
	}
	if v.Errors, err = formFailure(c, err, fields...); err != nil {
		return err
	}
	return s.render(c, views.AdminBilling(v))
}

func (s *Server) webAdminBillingSettings(c *fiber.Ctx) error {
	bp, err := parsePercent("vat", c.FormValue("vat_rate"))
	if err == nil {
		err = s.store.SetBillingSettings(c.UserContext(), s.actor(c), c.FormValue("currency"), bp)
	}
	if err != nil {
		return s.adminBillingFailed(c, err, nil, "currency", "vat")
	}
	return s.redirect(c, "/admin/billing", "success", "Currency and VAT saved.")
}

func (s *Server) webAdminPriceCreate(c *fiber.Ctx) error {
	req := priceInput{Item: c.FormValue("item"), Hourly: c.FormValue("hourly"), MonthlyCap: c.FormValue("monthly_cap")}
	stopped := c.FormValue("bills_when_stopped") != ""
	req.BillsWhenStopped = &stopped
	from := strings.TrimSpace(c.FormValue("effective_from"))
	in, err := req.input()
	if err == nil && from != "" {
		if in.EffectiveFrom, err = time.Parse("2006-01-02T15:04", from); err != nil {
			err = store.E(store.ErrInvalid, "effective_from", "give the start as a date and an hour")
		}
	}
	if err == nil {
		_, err = s.store.SetPrice(c.UserContext(), s.actor(c), in)
	}
	if err != nil {
		return s.adminBillingFailed(c, err, func(v *views.AdminBillingView) {
			v.Item, v.Hourly, v.Monthly, v.From, v.BillStopped = req.Item, req.Hourly, req.MonthlyCap, from, stopped
		}, "item", "hourly", "monthly", "effective_from")
	}
	return s.redirect(c, "/admin/billing", "success", "Price added.")
}

func (s *Server) webAdminInvoiceIssue(c *fiber.Ctx) error {
	rep, err := s.store.IssueInvoices(c.UserContext(), s.actor(c), strings.TrimSpace(c.FormValue("month")), "")
	if err != nil {
		return s.adminBillingFailed(c, err, nil, "month")
	}
	return s.redirect(c, "/admin/billing", "success", fmt.Sprintf("%s: %d invoices issued for %s in all; %d tenants were invoiced before, %d had nothing to bill.",
		rep.Month, rep.Issued, rep.Total, rep.Already, rep.Empty))
}

func (s *Server) webAdminCreditNote(c *fiber.Ctx) error {
	id := c.Params("id")
	amount, err := store.ParseAmount(c.FormValue("amount"))
	if err != nil {
		err = store.E(store.ErrInvalid, "amount", "give the amount before VAT with at most two decimals, like 5.00")
	}
	var cn store.Invoice
	if err == nil {
		cn, err = s.store.CreateCreditNote(c.UserContext(), s.actor(c), id, amount, c.FormValue("reason"))
	}
	if err != nil {
		inv, lerr := s.store.GetInvoice(c.UserContext(), "", id)
		if lerr != nil {
			return lerr
		}
		v := invoiceView(s.page(c, inv.Number, "admin-billing"), inv, "/admin/billing/invoices/", "/admin/billing", "Billing")
		v.CanCredit = true
		if v.Errors, err = formFailure(c, err, "amount", "reason"); err != nil {
			return err
		}
		return s.render(c, views.Invoice(v))
	}
	return s.redirect(c, "/admin/billing/invoices/"+cn.ID, "success", "Credit note "+cn.Number+" issued.")
}
