package portal

import (
	"encoding/csv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type billingSettingsJSON struct {
	Currency     string  `json:"currency"`
	VATRate      string  `json:"vat_rate"` // percent, e.g. "21.00"
	CreditLimit  *string `json:"default_credit_limit"`
	NextNumber   int64   `json:"next_invoice_number"`
	NumberPrefix string  `json:"invoice_prefix"`
}

func (s *Server) sendBillingSettings(c *fiber.Ctx) error {
	b, err := s.store.GetBillingSettings(c.UserContext())
	if err != nil {
		return err
	}
	j := billingSettingsJSON{Currency: b.Currency, VATRate: vatRate(b.VATBP), NextNumber: b.NextNumber, NumberPrefix: b.InvoicePrefix}
	if b.DefaultCreditLimitMinor != nil {
		l := store.Money{Minor: *b.DefaultCreditLimitMinor, Currency: b.Currency}.Decimal()
		j.CreditLimit = &l
	}
	return c.JSON(j)
}

func (s *Server) apiAdminBillingSettings(c *fiber.Ctx) error { return s.sendBillingSettings(c) }

type billingSettingsInput struct {
	Currency string `json:"currency"`
	VATRate  string `json:"vat_rate"`
}

// parsePercent reads "21" or "21.00" as basis points.
func parsePercent(field, v string) (int, error) {
	n, err := store.ParseAmount(v)
	if err != nil {
		return 0, store.E(store.ErrInvalid, field, "give a percentage with at most two decimals, like 21 or 19.5")
	}
	return int(n), nil
}

func (s *Server) apiAdminBillingSettingsUpdate(c *fiber.Ctx) error {
	var req billingSettingsInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	bp, err := parsePercent("vat_rate", req.VATRate)
	if err != nil {
		return err
	}
	if err := s.store.SetBillingSettings(c.UserContext(), s.actor(c), req.Currency, bp); err != nil {
		return err
	}
	return s.sendBillingSettings(c)
}

type adminPriceJSON struct {
	ID   string `json:"id"`
	Item string `json:"item"` // "plan:<id>", "port_forward" or "snapshot-gib"
	priceJSON
}

func (s *Server) apiAdminPriceList(c *fiber.Ctx) error {
	ctx := c.UserContext()
	b, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return err
	}
	ps, err := s.store.Prices(ctx)
	if err != nil {
		return err
	}
	items := make([]adminPriceJSON, len(ps))
	for i, p := range ps {
		items[i] = adminPriceJSON{ID: p.ID, Item: p.Item, priceJSON: *newPriceJSON(p, b.Currency)}
	}
	return c.JSON(newItems(items))
}

type priceInput struct {
	Item             string  `json:"item"`
	Hourly           string  `json:"hourly"`
	MonthlyCap       string  `json:"monthly_cap"`
	BillsWhenStopped *bool   `json:"bills_when_stopped"`
	EffectiveFrom    *string `json:"effective_from"`
}

func (r priceInput) input() (store.PriceInput, error) {
	in := store.PriceInput{Item: strings.TrimSpace(r.Item), BillStopped: true}
	var err error
	if in.HourlyMicros, err = store.ParseRate(r.Hourly); err != nil {
		return in, store.E(store.ErrInvalid, "hourly", "give the hourly rate as a decimal with at most six places, like 0.006")
	}
	if strings.TrimSpace(r.MonthlyCap) != "" {
		if in.MonthlyCapMinor, err = store.ParseAmount(r.MonthlyCap); err != nil {
			return in, store.E(store.ErrInvalid, "monthly_cap", "give the monthly price as an amount with at most two decimals, like 4.00")
		}
	}
	if r.BillsWhenStopped != nil {
		in.BillStopped = *r.BillsWhenStopped
	}
	if r.EffectiveFrom != nil && strings.TrimSpace(*r.EffectiveFrom) != "" {
		if in.EffectiveFrom, err = time.Parse(time.RFC3339, strings.TrimSpace(*r.EffectiveFrom)); err != nil {
			return in, store.E(store.ErrInvalid, "effective_from", "give the start as a time like 2027-01-01T00:00:00Z")
		}
	}
	return in, nil
}

func (s *Server) apiAdminPriceCreate(c *fiber.Ctx) error {
	var req priceInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input()
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	p, err := s.store.SetPrice(ctx, s.actor(c), in)
	if err != nil {
		return err
	}
	b, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(adminPriceJSON{ID: p.ID, Item: p.Item, priceJSON: *newPriceJSON(p, b.Currency)})
}

type paymentInput struct {
	Kind      string `json:"kind"` // payment | credit
	Amount    string `json:"amount"`
	Reference string `json:"reference"`
	Note      string `json:"note"`
}

type paymentJSON struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Amount     string    `json:"amount"`
	Reference  string    `json:"reference"`
	Note       string    `json:"note"`
	RecordedBy string    `json:"recorded_by"`
	RecordedAt time.Time `json:"recorded_at"`
}

func newPaymentJSON(p store.Payment, currency string) paymentJSON {
	return paymentJSON{ID: p.ID, Kind: p.Kind, Amount: store.Money{Minor: p.AmountMinor, Currency: currency}.Decimal(),
		Reference: p.Reference, Note: p.Note, RecordedBy: p.RecordedBy, RecordedAt: p.RecordedAt}
}

func (s *Server) apiAdminPaymentCreate(c *fiber.Ctx) error {
	var req paymentInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	amount, err := store.ParseAmount(req.Amount)
	if err != nil {
		return store.E(store.ErrInvalid, "amount", "give the amount with at most two decimals, like 25.00")
	}
	ctx := c.UserContext()
	tenantID := c.Params("id")
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return err
	}
	p, err := s.store.RecordPayment(ctx, s.actor(c), tenantID, strings.TrimSpace(req.Kind), amount, req.Reference, req.Note)
	if err != nil {
		return err
	}
	b, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(newPaymentJSON(p, b.Currency))
}

type tenantBillingJSON struct {
	Balance  balanceJSON   `json:"balance"`
	Payments []paymentJSON `json:"payments"`
}

// apiAdminTenantBilling is a tenant's balance and latest payments.
func (s *Server) apiAdminTenantBilling(c *fiber.Ctx) error {
	ctx := c.UserContext()
	tenantID := c.Params("id")
	bal, err := s.store.GetBalance(ctx, tenantID)
	if err != nil {
		return err
	}
	ps, _, err := s.store.ListPayments(ctx, tenantID, store.Page{PerPage: 50})
	if err != nil {
		return err
	}
	out := tenantBillingJSON{Balance: newBalanceJSON(bal), Payments: []paymentJSON{}}
	for _, p := range ps {
		out.Payments = append(out.Payments, newPaymentJSON(p, bal.Balance.Currency))
	}
	return c.JSON(out)
}

type creditLimitInput struct {
	CreditLimit *string `json:"credit_limit"` // null: the default
}

func (s *Server) apiAdminTenantCreditLimit(c *fiber.Ctx) error {
	var req creditLimitInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var limit *int64
	if req.CreditLimit != nil {
		v, err := store.ParseAmount(*req.CreditLimit)
		if err != nil {
			return store.E(store.ErrInvalid, "credit_limit", "give the limit with at most two decimals, like 10.00, or null for the default")
		}
		limit = &v
	}
	if err := s.store.SetCreditLimit(c.UserContext(), s.actor(c), c.Params("id"), limit); err != nil {
		return err
	}
	return s.apiAdminTenantBilling(c)
}

type issueInput struct {
	Month    string `json:"month"`
	TenantID string `json:"tenant_id"`
}

type issueJSON struct {
	Month   string `json:"month"`
	Issued  int    `json:"issued"`
	Already int    `json:"already_invoiced"`
	Empty   int    `json:"nothing_to_bill"`
	Total   string `json:"total"`
}

func (s *Server) apiAdminInvoiceIssue(c *fiber.Ctx) error {
	var req issueInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	rep, err := s.store.IssueInvoices(c.UserContext(), s.actor(c), strings.TrimSpace(req.Month), strings.TrimSpace(req.TenantID))
	if err != nil {
		return err
	}
	return c.JSON(issueJSON{Month: rep.Month, Issued: rep.Issued, Already: rep.Already, Empty: rep.Empty, Total: rep.Total.Decimal()})
}

type creditNoteInput struct {
	Amount string `json:"amount"`
	Reason string `json:"reason"`
}

func (s *Server) apiAdminCreditNoteCreate(c *fiber.Ctx) error {
	var req creditNoteInput
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	amount, err := store.ParseAmount(req.Amount)
	if err != nil {
		return store.E(store.ErrInvalid, "amount", "give the amount before VAT with at most two decimals, like 5.00")
	}
	cn, err := s.store.CreateCreditNote(c.UserContext(), s.actor(c), c.Params("id"), amount, req.Reason)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(newInvoiceJSON(cn))
}

// apiAdminInvoiceCSV exports a month's invoices and credit notes for the
// ISP's accounting, one row each.
func (s *Server) apiAdminInvoiceCSV(c *fiber.Ctx) error {
	month := strings.TrimSpace(c.Query("month"))
	if month == "" { // the month last invoiced
		now := time.Now().UTC()
		month = store.MonthOf(now.AddDate(0, 0, -now.Day()))
	}
	list, err := s.store.MonthInvoices(c.UserContext(), month)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="invoices-`+month+`.csv"`)
	w := csv.NewWriter(c)
	_ = w.Write([]string{"number", "kind", "issued", "month", "tenant_id", "tenant", "currency", "subtotal", "vat_rate", "vat", "total"})
	for _, inv := range list {
		_ = w.Write([]string{inv.Number, inv.Kind, inv.IssuedAt.UTC().Format(time.DateOnly), inv.Month, inv.TenantID, csvText(inv.TenantName),
			inv.Currency, inv.Subtotal().Decimal(), vatRate(inv.VATBP), inv.VAT().Decimal(), inv.Total().Decimal()})
	}
	w.Flush()
	return w.Error()
}

type overdueJSON struct {
	TenantID string      `json:"tenant_id"`
	Name     string      `json:"name"`
	Balance  balanceJSON `json:"balance"`
}

func (s *Server) apiAdminOverdue(c *fiber.Ctx) error {
	list, err := s.store.OverdueTenants(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]overdueJSON, len(list))
	for i, o := range list {
		items[i] = overdueJSON{TenantID: o.TenantID, Name: o.Name, Balance: newBalanceJSON(o.Balance)}
	}
	return c.JSON(newItems(items))
}

// csvText keeps a customer-chosen name from running as a spreadsheet
// formula.
func csvText(v string) string {
	if v != "" && strings.ContainsAny(v[:1], "=+-@") {
		return "'" + v
	}
	return v
}
