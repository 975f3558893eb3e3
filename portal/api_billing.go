package portal

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// ownerRead lets the organisation's owners see its bills, with any token.
func ownerRead(c *fiber.Ctx) error {
	if who(c).User.Role != store.RoleOwner {
		return errForbidden("only owners of the organisation can see its bills")
	}
	return c.Next()
}

type priceJSON struct {
	Currency         string `json:"currency"`
	Hourly           string `json:"hourly"`      // per started hour, e.g. "0.006"
	MonthlyCap       string `json:"monthly_cap"` // at most this a month, e.g. "4.00"; "" when uncapped
	BillsWhenStopped bool   `json:"bills_when_stopped"`
	EffectiveFrom    string `json:"effective_from"`
}

func newPriceJSON(p store.Price, currency string) *priceJSON {
	j := &priceJSON{Currency: currency, Hourly: store.RateDecimal(p.HourlyMicros), BillsWhenStopped: p.BillStopped,
		EffectiveFrom: p.EffectiveFrom.UTC().Format(time.RFC3339)}
	if p.MonthlyCapMinor > 0 {
		j.MonthlyCap = store.Money{Minor: p.MonthlyCapMinor, Currency: currency}.Decimal()
	}
	return j
}

type usageLineJSON struct {
	ResourceKind string `json:"resource_kind"`
	ResourceID   string `json:"resource_id"`
	ResourceName string `json:"resource_name"`
	Units        int64  `json:"units"` // a snapshot's GiB, 1 for a VM or a port forward
	Hours        int64  `json:"hours"`
	Amount       string `json:"amount"`
}

type balanceJSON struct {
	Balance     string  `json:"balance"`
	Paid        string  `json:"paid"`
	Credited    string  `json:"credited"`
	Invoiced    string  `json:"invoiced"`
	Unbilled    string  `json:"unbilled"`
	CreditLimit *string `json:"credit_limit"`
	Overdue     bool    `json:"overdue"`
}

func newBalanceJSON(b store.Balance) balanceJSON {
	j := balanceJSON{Balance: b.Balance.Decimal(), Paid: b.Paid.Decimal(), Credited: b.Credited.Decimal(),
		Invoiced: b.Invoiced.Decimal(), Unbilled: b.Unbilled.Decimal(), Overdue: b.Overdue()}
	if b.CreditLimit != nil {
		l := b.CreditLimit.Decimal()
		j.CreditLimit = &l
	}
	return j
}

type usageResponse struct {
	Month        string          `json:"month"`
	Currency     string          `json:"currency"`
	MeteredUntil *time.Time      `json:"metered_until"`
	Lines        []usageLineJSON `json:"lines"`
	Subtotal     string          `json:"subtotal"`
	Forecast     string          `json:"forecast"`
	VATRate      string          `json:"vat_rate"`
	Balance      balanceJSON     `json:"balance"`
}

func vatRate(bp int) string { return fmt.Sprintf("%d.%02d", bp/100, bp%100) }

// apiBillingUsage is the month so far: metered usage per resource, the
// forecast for the month and the account balance.
func (s *Server) apiBillingUsage(c *fiber.Ctx) error {
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
	out := usageResponse{Month: sp.Month, Currency: sp.ToDate.Currency, MeteredUntil: sp.MeteredUntil, Lines: []usageLineJSON{},
		Subtotal: sp.ToDate.Decimal(), Forecast: sp.Forecast.Decimal(), VATRate: vatRate(sp.VATBP), Balance: newBalanceJSON(bal)}
	for _, l := range sp.Lines {
		out.Lines = append(out.Lines, usageLineJSON{ResourceKind: l.ResourceKind, ResourceID: l.ResourceID, ResourceName: l.ResourceName,
			Units: max(l.Units, 1), Hours: l.Hours, Amount: store.Money{Minor: l.AmountMinor, Currency: sp.ToDate.Currency}.Decimal()})
	}
	return c.JSON(out)
}

type invoiceLineJSON struct {
	Description string `json:"description"`
	Hours       int64  `json:"hours"`
	UnitPrice   string `json:"unit_price"`
	Amount      string `json:"amount"`
}

type invoiceJSON struct {
	ID               string            `json:"id"`
	Number           string            `json:"number"`
	Kind             string            `json:"kind"`
	TenantID         string            `json:"tenant_id"`
	TenantName       string            `json:"tenant_name"`
	Month            string            `json:"month"`
	Currency         string            `json:"currency"`
	Subtotal         string            `json:"subtotal"`
	VATRate          string            `json:"vat_rate"`
	VAT              string            `json:"vat"`
	Total            string            `json:"total"`
	CreditsInvoiceID string            `json:"credits_invoice_id,omitempty"`
	Reason           string            `json:"reason,omitempty"`
	IssuedAt         time.Time         `json:"issued_at"`
	Lines            []invoiceLineJSON `json:"lines,omitempty"`
}

func newInvoiceJSON(inv store.Invoice) invoiceJSON {
	j := invoiceJSON{ID: inv.ID, Number: inv.Number, Kind: inv.Kind, TenantID: inv.TenantID, TenantName: inv.TenantName, Month: inv.Month,
		Currency: inv.Currency, Subtotal: inv.Subtotal().Decimal(), VATRate: vatRate(inv.VATBP), VAT: inv.VAT().Decimal(),
		Total: inv.Total().Decimal(), Reason: inv.Reason, IssuedAt: inv.IssuedAt}
	if inv.CreditsInvoiceID != nil {
		j.CreditsInvoiceID = *inv.CreditsInvoiceID
	}
	for _, l := range inv.Lines {
		j.Lines = append(j.Lines, invoiceLineJSON{Description: l.Description, Hours: l.Hours, UnitPrice: store.RateDecimal(l.UnitMicros),
			Amount: store.Money{Minor: l.AmountMinor, Currency: inv.Currency}.Decimal()})
	}
	return j
}

func (s *Server) apiInvoiceList(c *fiber.Ctx) error {
	p, err := apiPage(c)
	if err != nil {
		return err
	}
	tenantID := who(c).User.Tenant()
	if who(c).staff() {
		tenantID = strings.TrimSpace(c.Query("tenant_id"))
	}
	list, n, err := s.store.ListInvoices(c.UserContext(), tenantID, p)
	if err != nil {
		return err
	}
	items := make([]invoiceJSON, len(list))
	for i, inv := range list {
		items[i] = newInvoiceJSON(inv)
	}
	return c.JSON(newList(items, p, n))
}

// invoiceFor loads the invoice in the path for the caller: a customer's own
// tenant's, or any for staff.
func (s *Server) invoiceFor(c *fiber.Ctx) (store.Invoice, error) {
	tenantID := who(c).User.Tenant()
	if who(c).staff() {
		tenantID = ""
	}
	return s.store.GetInvoice(c.UserContext(), tenantID, strings.TrimSuffix(c.Params("id"), ".pdf"))
}

func (s *Server) apiInvoiceGet(c *fiber.Ctx) error {
	if strings.HasSuffix(c.Params("id"), ".pdf") {
		return s.invoicePDF(c)
	}
	inv, err := s.invoiceFor(c)
	if err != nil {
		return err
	}
	return c.JSON(newInvoiceJSON(inv))
}

func (s *Server) invoicePDF(c *fiber.Ctx) error {
	inv, err := s.invoiceFor(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := renderInvoicePDF(&buf, inv, s.cfg.PublicURL); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/pdf")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s.pdf"`, inv.Number))
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	return c.Send(buf.Bytes())
}
