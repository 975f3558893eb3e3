package portal

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func invoiceRows(list []store.Invoice) []views.InvoiceRow {
	rows := make([]views.InvoiceRow, len(list))
	for i, inv := range list {
		rows[i] = views.InvoiceRow{ID: inv.ID, Number: inv.Number, Kind: inv.Kind, Month: inv.Month,
			IssuedAt: inv.IssuedAt.UTC().Format(time.DateOnly), Total: inv.Total().String(), Tenant: inv.TenantName}
	}
	return rows
}

func (s *Server) webBilling(c *fiber.Ctx) error {
	ctx := c.UserContext()
	tenantID := who(c).User.Tenant()
	sp, err := s.store.MonthSpend(ctx, tenantID)
	if err != nil {
		return err
	}
	bal, err := s.store.GetBalance(ctx, tenantID)
	if err != nil {
		return err
	}
	p := pageOf(c)
	list, n, err := s.store.ListInvoices(ctx, tenantID, p)
	if err != nil {
		return err
	}
	v := views.BillingView{Page: s.page(c, "Billing", "billing"), Month: sp.Month, ToDate: sp.ToDate.String(), Forecast: sp.Forecast.String(),
		VATRate: vatRate(sp.VATBP), Balance: bal.Balance.String(), Owing: bal.Balance.Minor < 0, Invoices: invoiceRows(list), Pager: pager(c, p, n)}
	if sp.MeteredUntil != nil {
		v.MeteredUntil = sp.MeteredUntil.UTC().Format("2 Jan 15:04")
	}
	if bal.CreditLimit != nil {
		v.CreditLimit = bal.CreditLimit.String()
	}
	for _, l := range sp.Lines {
		what := "VM " + l.ResourceName
		switch l.ResourceKind {
		case store.ResourcePortForward:
			what = "Port forward " + l.ResourceName
		case store.ResourceSnapshot:
			what = fmt.Sprintf("Snapshot %s (%d GiB × %d h)", l.ResourceName, max(l.Units, 1), l.Hours)
		}
		v.Lines = append(v.Lines, views.MoneyLine{Description: what, Hours: l.Hours, Amount: store.Money{Minor: l.AmountMinor, Currency: sp.ToDate.Currency}.String()})
	}
	return s.render(c, views.Billing(v))
}

func invoiceView(page views.Page, inv store.Invoice, base, back, backText string) views.InvoiceView {
	v := views.InvoiceView{Page: page, ID: inv.ID, Number: inv.Number, Title: "Invoice", Tenant: inv.TenantName, Month: inv.Month,
		IssuedAt: inv.IssuedAt.UTC().Format("2 January 2006"), Reason: inv.Reason, Subtotal: inv.Subtotal().String(),
		VATRate: vatRate(inv.VATBP), VAT: inv.VAT().String(), Total: inv.Total().String(), PDFURL: base + inv.ID + ".pdf", BackURL: back, BackText: backText}
	if inv.Kind == store.CreditNoteKind {
		v.Title = "Credit note"
	}
	for _, l := range inv.Lines {
		v.Lines = append(v.Lines, views.MoneyLine{Description: l.Description, Hours: l.Hours, Amount: store.Money{Minor: l.AmountMinor, Currency: inv.Currency}.String()})
	}
	return v
}

// webInvoice shows an invoice, or with .pdf sends the PDF.
func (s *Server) webInvoice(c *fiber.Ctx) error {
	if strings.HasSuffix(c.Params("id"), ".pdf") {
		return s.invoicePDF(c)
	}
	inv, err := s.invoiceFor(c)
	if err != nil {
		return err
	}
	if who(c).staff() {
		v := invoiceView(s.page(c, inv.Number, "admin-billing"), inv, "/admin/billing/invoices/", "/admin/billing", "Billing")
		v.CanCredit = inv.Kind == store.InvoiceKind && v.Page.User.CanAdmin()
		return s.render(c, views.Invoice(v))
	}
	return s.render(c, views.Invoice(invoiceView(s.page(c, inv.Number, "billing"), inv, "/billing/invoices/", "/billing", "Billing")))
}
