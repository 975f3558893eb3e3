package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Invoice kinds.
const (
	InvoiceKind    = "invoice"
	CreditNoteKind = "credit_note"
)

// Payment kinds: money received, and credit staff grant.
const (
	PaymentKind = "payment"
	CreditKind  = "credit"
)

// Invoice is an issued invoice or credit note; it never changes.
type Invoice struct {
	ID               string
	Number           string
	Kind             string
	TenantID         string
	TenantName       string
	Month            string
	Currency         string
	SubtotalMinor    int64
	VATBP            int `gorm:"column:vat_bp"`
	VATMinor         int64
	TotalMinor       int64
	CreditsInvoiceID *string
	Reason           string
	IssuedAt         time.Time
	IssuedBy         string

	Lines []InvoiceLine `gorm:"-"`
}

// TableName keeps the table name plain.
func (Invoice) TableName() string { return "invoices" }

// Money helpers for templates and the API.
func (i Invoice) Subtotal() Money { return Money{i.SubtotalMinor, i.Currency} }
func (i Invoice) VAT() Money      { return Money{i.VATMinor, i.Currency} }
func (i Invoice) Total() Money    { return Money{i.TotalMinor, i.Currency} }

// InvoiceLine is one line: a resource over the month at one price.
type InvoiceLine struct {
	ID           string
	InvoiceID    string
	Position     int
	Description  string
	ResourceKind string
	ResourceID   string
	Hours        int64
	UnitMicros   int64
	AmountMinor  int64
}

// TableName keeps the table name plain.
func (InvoiceLine) TableName() string { return "invoice_lines" }

// Payment is money received from a tenant, or credit given to it.
type Payment struct {
	ID          string
	TenantID    string
	Kind        string
	AmountMinor int64
	Reference   string
	Note        string
	RecordedBy  string
	RecordedAt  time.Time
}

// TableName keeps the table name plain.
func (Payment) TableName() string { return "payments" }

// IssueReport says what an invoicing run did.
type IssueReport struct {
	Month   string
	Issued  int   // invoices issued now
	Already int   // tenants invoiced for the month before
	Empty   int   // tenants whose month came to nothing
	Total   Money // sum of the invoices issued now
}

// issueBatch is how many invoices one transaction issues.
const issueBatch = 200

// IssueInvoices issues one invoice per tenant for a month that has ended
// (tenantID "": every tenant), after metering it to its end: a line per
// resource and price, the subtotal, VAT on the subtotal, the total.
// Numbers come from one sequence without gaps; a tenant already invoiced
// for the month is skipped, so the run may be repeated.
func (s *Store) IssueInvoices(ctx context.Context, a Actor, month, tenantID string) (IssueReport, error) {
	_, end, err := MonthBounds(month)
	if err != nil {
		return IssueReport{}, err
	}
	if s.now().Before(end) {
		return IssueReport{}, E(ErrInvalid, "month", month+" has not ended; a month is invoiced once it is over")
	}
	set, err := s.GetBillingSettings(ctx)
	if err != nil {
		return IssueReport{}, err
	}
	rep := IssueReport{Month: month, Total: Money{Currency: set.Currency}}
	if _, err := s.MeterMonth(ctx, month, end); err != nil {
		return rep, err
	}
	db := s.db.WithContext(ctx)
	q := db.Where("month = ?", month)
	if tenantID != "" {
		q = q.Where("tenant_id = ?", tenantID)
	}
	var totals []UsageTotal
	if err := q.Order("tenant_id, resource_kind DESC, resource_name, resource_id, item, price_id").Find(&totals).Error; err != nil {
		return rep, fmt.Errorf("load usage totals: %w", err)
	}
	describe, err := s.lineDescriber(ctx, set.Currency)
	if err != nil {
		return rep, err
	}
	names := map[string]string{}
	var tenantRows []Tenant
	if err := db.Select("id, name").Find(&tenantRows).Error; err != nil {
		return rep, fmt.Errorf("load tenants: %w", err)
	}
	for _, t := range tenantRows {
		names[t.ID] = t.Name
	}
	// One draft per tenant, in tenant order.
	var drafts []Invoice
	for i := 0; i < len(totals); {
		j := i
		inv := Invoice{TenantID: totals[i].TenantID, TenantName: names[totals[i].TenantID], Month: month, Currency: set.Currency, VATBP: set.VATBP}
		for ; j < len(totals) && totals[j].TenantID == inv.TenantID; j++ {
			u := totals[j]
			desc, unit := describe(u)
			inv.Lines = append(inv.Lines, InvoiceLine{Position: len(inv.Lines) + 1, Description: desc, ResourceKind: u.ResourceKind,
				ResourceID: u.ResourceID, Hours: u.Hours, UnitMicros: unit, AmountMinor: u.AmountMinor})
			inv.SubtotalMinor += u.AmountMinor
		}
		i = j
		if inv.SubtotalMinor == 0 {
			rep.Empty++
			continue
		}
		inv.VATMinor = VATAmount(inv.SubtotalMinor, inv.VATBP)
		inv.TotalMinor = inv.SubtotalMinor + inv.VATMinor
		drafts = append(drafts, inv)
	}
	for b := 0; b < len(drafts); b += issueBatch {
		batch := drafts[b:min(b+issueBatch, len(drafts))]
		var issued []Invoice
		err := db.Transaction(func(tx *gorm.DB) error {
			// The settings row is the sequence: holding it, no other run
			// issues meanwhile, and a rollback gives the numbers back.
			if err := tx.Exec("UPDATE billing_settings SET next_number = next_number WHERE id = 1").Error; err != nil {
				return fmt.Errorf("lock invoice numbers: %w", err)
			}
			ids := make([]string, len(batch))
			for i, d := range batch {
				ids[i] = d.TenantID
			}
			var done []string
			if err := tx.Model(&Invoice{}).Where("kind = ? AND month = ? AND tenant_id IN ?", InvoiceKind, month, ids).
				Pluck("tenant_id", &done).Error; err != nil {
				return err
			}
			skip := map[string]bool{}
			for _, t := range done {
				skip[t] = true
			}
			issued = issued[:0]
			for _, d := range batch {
				if !skip[d.TenantID] {
					issued = append(issued, d)
				}
			}
			if len(issued) == 0 {
				return nil
			}
			first, prefix, err := takeNumbers(tx, len(issued))
			if err != nil {
				return err
			}
			ts := s.now()
			var lines []InvoiceLine
			var audit []*AuditEntry
			for i := range issued {
				inv := &issued[i]
				inv.ID, inv.Kind, inv.Number, inv.IssuedAt, inv.IssuedBy = newID(), InvoiceKind, invoiceNumber(prefix, first+int64(i)), ts, a.Email
				for _, l := range inv.Lines {
					l.ID, l.InvoiceID = newID(), inv.ID
					lines = append(lines, l)
				}
				audit = append(audit, auditEntry(a, "invoice.issue", &Target{Type: "invoice", ID: inv.ID, Name: inv.Number, TenantID: inv.TenantID},
					ResultSuccess, fmt.Sprintf("%s for %s: %s", inv.Number, month, inv.Total())))
			}
			if err := tx.CreateInBatches(issued, 200).Error; err != nil {
				return fmt.Errorf("issue invoices: %w", err)
			}
			if err := tx.CreateInBatches(lines, 500).Error; err != nil {
				return fmt.Errorf("issue invoice lines: %w", err)
			}
			return tx.CreateInBatches(audit, 500).Error
		})
		if err != nil {
			return rep, err
		}
		rep.Issued += len(issued)
		rep.Already += len(batch) - len(issued)
		for _, inv := range issued {
			rep.Total.Minor += inv.TotalMinor
		}
	}
	return rep, nil
}

// takeNumbers takes n consecutive numbers from the sequence, in tx.
func takeNumbers(tx *gorm.DB, n int) (first int64, prefix string, err error) {
	if err := tx.Exec("UPDATE billing_settings SET next_number = next_number + ? WHERE id = 1", n).Error; err != nil {
		return 0, "", fmt.Errorf("take invoice numbers: %w", err)
	}
	var set BillingSettings
	if err := tx.Where("id = 1").Take(&set).Error; err != nil {
		return 0, "", fmt.Errorf("take invoice numbers: %w", err)
	}
	return set.NextNumber - int64(n), set.InvoicePrefix, nil
}

func invoiceNumber(prefix string, n int64) string { return fmt.Sprintf("%s-%06d", prefix, n) }

// lineDescriber words an invoice line and gives its unit rate.
func (s *Store) lineDescriber(ctx context.Context, currency string) (func(UsageTotal) (string, int64), error) {
	db := s.db.WithContext(ctx)
	var prices []Price
	if err := db.Find(&prices).Error; err != nil {
		return nil, fmt.Errorf("load prices: %w", err)
	}
	byID := map[string]Price{}
	for _, p := range prices {
		byID[p.ID] = p
	}
	var plans []Plan
	if err := db.Find(&plans).Error; err != nil {
		return nil, fmt.Errorf("load plans: %w", err)
	}
	planNames := map[string]string{}
	for _, p := range plans {
		planNames[PlanItem(p.ID)] = p.Name
	}
	return func(u UsageTotal) (string, int64) {
		p, priced := byID[u.PriceID]
		what, qty, per := "Port forward "+u.ResourceName, fmt.Sprintf("%d h", u.Hours), ""
		switch u.ResourceKind {
		case ResourceVM:
			what = fmt.Sprintf("VM %s (plan %s)", u.ResourceName, planNames[u.Item])
		case ResourceSnapshot:
			what, qty, per = "Snapshot "+u.ResourceName, fmt.Sprintf("%d GiB × %d h", max(u.Units, 1), u.Hours), " per GiB"
		}
		if !priced {
			return fmt.Sprintf("%s: %s, not priced", what, qty), 0
		}
		d := fmt.Sprintf("%s: %s × %s%s", what, qty, FormatRate(p.HourlyMicros, currency), per)
		if p.MonthlyCapMinor > 0 && u.AmountMinor == p.MonthlyCapMinor {
			d += fmt.Sprintf(", capped at %s a month", Money{p.MonthlyCapMinor, currency})
		}
		return d, p.HourlyMicros
	}, nil
}

// ListInvoices lists a tenant's invoices and credit notes (tenantID "":
// every tenant's, for staff), newest first.
func (s *Store) ListInvoices(ctx context.Context, tenantID string, p Page) ([]Invoice, int, error) {
	q := s.db.WithContext(ctx).Model(&Invoice{})
	if tenantID != "" {
		q = q.Where("tenant_id = ?", tenantID)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return nil, 0, fmt.Errorf("count invoices: %w", err)
	}
	var out []Invoice
	if err := p.apply(q.Order("issued_at DESC, number DESC")).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list invoices: %w", err)
	}
	return out, int(n), nil
}

// MonthInvoices lists every invoice and credit note for a month, by number.
func (s *Store) MonthInvoices(ctx context.Context, month string) ([]Invoice, error) {
	if _, _, err := MonthBounds(month); err != nil {
		return nil, err
	}
	var out []Invoice
	if err := s.db.WithContext(ctx).Where("month = ?", month).Order("number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	return out, nil
}

// GetInvoice loads an invoice with its lines; another tenant's is not
// found (tenantID "": any, for staff).
func (s *Store) GetInvoice(ctx context.Context, tenantID, id string) (Invoice, error) {
	q := s.db.WithContext(ctx).Where("id = ?", id)
	if tenantID != "" {
		q = q.Where("tenant_id = ?", tenantID)
	}
	var inv Invoice
	if err := q.Take(&inv).Error; err != nil {
		if errIsNotFound(err) {
			return Invoice{}, notFound("invoice")
		}
		return Invoice{}, fmt.Errorf("load invoice: %w", err)
	}
	if err := s.db.WithContext(ctx).Where("invoice_id = ?", id).Order("position").Find(&inv.Lines).Error; err != nil {
		return Invoice{}, fmt.Errorf("load invoice lines: %w", err)
	}
	return inv, nil
}

// CreateCreditNote corrects an issued invoice: a credit note of amount
// (before VAT, at the invoice's VAT rate) numbered from the same sequence.
// The credit notes of an invoice never add up to more than it.
func (s *Store) CreateCreditNote(ctx context.Context, a Actor, invoiceID string, amountMinor int64, reason string) (Invoice, error) {
	reason = strings.Join(strings.Fields(reason), " ")
	switch {
	case amountMinor <= 0:
		return Invoice{}, E(ErrInvalid, "amount", "a credit note is for a positive amount")
	case reason == "":
		return Invoice{}, E(ErrInvalid, "reason", "say why; the customer sees it")
	case len(reason) > 200:
		return Invoice{}, E(ErrInvalid, "reason", "the reason must be at most 200 characters")
	}
	var cn Invoice
	t := &Target{Type: "invoice", ID: invoiceID}
	err := s.change(ctx, a, "invoice.credit_note", t, func(tx *gorm.DB) error {
		if err := tx.Exec("UPDATE billing_settings SET next_number = next_number WHERE id = 1").Error; err != nil {
			return fmt.Errorf("lock invoice numbers: %w", err)
		}
		var inv Invoice
		if err := tx.Where("id = ? AND kind = ?", invoiceID, InvoiceKind).Take(&inv).Error; err != nil {
			if errIsNotFound(err) {
				return notFound("invoice")
			}
			return err
		}
		t.TenantID, t.Name = inv.TenantID, inv.Number
		var credited int64
		if err := tx.Model(&Invoice{}).Where("credits_invoice_id = ?", inv.ID).Select("COALESCE(SUM(-subtotal_minor), 0)").Row().Scan(&credited); err != nil {
			return err
		}
		if credited+amountMinor > inv.SubtotalMinor {
			return E(ErrInvalid, "amount", fmt.Sprintf("%s has %s left to credit", inv.Number, Money{inv.SubtotalMinor - credited, inv.Currency}))
		}
		first, prefix, err := takeNumbers(tx, 1)
		if err != nil {
			return err
		}
		vat := VATAmount(amountMinor, inv.VATBP)
		cn = Invoice{ID: newID(), Number: invoiceNumber(prefix, first), Kind: CreditNoteKind, TenantID: inv.TenantID, TenantName: inv.TenantName,
			Month: inv.Month, Currency: inv.Currency, SubtotalMinor: -amountMinor, VATBP: inv.VATBP, VATMinor: -vat, TotalMinor: -amountMinor - vat,
			CreditsInvoiceID: &inv.ID, Reason: reason, IssuedAt: s.now(), IssuedBy: a.Email}
		cn.Lines = []InvoiceLine{{ID: newID(), InvoiceID: cn.ID, Position: 1, Description: "Credit for " + inv.Number + ": " + reason, AmountMinor: -amountMinor}}
		if err := tx.Create(&cn).Error; err != nil {
			return err
		}
		return tx.Create(&cn.Lines).Error
	})
	return cn, err
}

// RecordPayment records money received (kind payment) or credit given
// (kind credit) for a tenant.
func (s *Store) RecordPayment(ctx context.Context, a Actor, tenantID, kind string, amountMinor int64, reference, note string) (Payment, error) {
	reference, note = strings.TrimSpace(reference), strings.Join(strings.Fields(note), " ")
	switch {
	case kind != PaymentKind && kind != CreditKind:
		return Payment{}, E(ErrInvalid, "kind", "record a payment or a credit")
	case amountMinor <= 0:
		return Payment{}, E(ErrInvalid, "amount", "the amount must be positive")
	case amountMinor > 100_000_000_00:
		return Payment{}, E(ErrInvalid, "amount", "the amount is too large")
	case kind == PaymentKind && reference == "":
		return Payment{}, E(ErrInvalid, "reference", "give the bank transfer or receipt reference")
	case len(reference) > 100 || len(note) > 200:
		return Payment{}, E(ErrInvalid, "reference", "the reference must be at most 100 characters and the note 200")
	}
	p := Payment{ID: newID(), TenantID: tenantID, Kind: kind, AmountMinor: amountMinor, Reference: reference, Note: note,
		RecordedBy: a.Email, RecordedAt: s.now()}
	t := &Target{Type: "payment", ID: p.ID, TenantID: tenantID}
	err := s.change(ctx, a, "billing."+kind, t, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		set, err := settingsTx(tx)
		if err != nil {
			return err
		}
		t.Name = fmt.Sprintf("%s %s for %s", kind, Money{amountMinor, set.Currency}, ten.Name)
		return tx.Create(&p).Error
	})
	return p, err
}

func settingsTx(tx *gorm.DB) (BillingSettings, error) {
	var set BillingSettings
	if err := tx.Where("id = 1").Take(&set).Error; err != nil {
		return BillingSettings{}, fmt.Errorf("load billing settings: %w", err)
	}
	return set, nil
}

// ListPayments lists a tenant's payments and credits, newest first.
func (s *Store) ListPayments(ctx context.Context, tenantID string, p Page) ([]Payment, int, error) {
	q := s.db.WithContext(ctx).Model(&Payment{}).Where("tenant_id = ?", tenantID)
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return nil, 0, err
	}
	var out []Payment
	if err := p.apply(q.Order("recorded_at DESC, id")).Find(&out).Error; err != nil {
		return nil, 0, fmt.Errorf("list payments: %w", err)
	}
	return out, int(n), nil
}

// Balance is where a tenant's account stands: what it paid and was
// credited, less what it was invoiced, less usage not invoiced yet (with
// VAT). Negative means it owes.
type Balance struct {
	Paid, Credited, Invoiced, Unbilled, Balance Money
	// CreditLimit is how far below zero orders are still accepted; nil:
	// no limit.
	CreditLimit *Money
}

// Overdue tells whether the balance is below the credit limit (or below
// zero for a tenant without a limit).
func (b Balance) Overdue() bool {
	if b.CreditLimit != nil {
		return b.Balance.Minor < -b.CreditLimit.Minor
	}
	return b.Balance.Minor < 0
}

// GetBalance computes a tenant's balance.
func (s *Store) GetBalance(ctx context.Context, tenantID string) (Balance, error) {
	var b Balance
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		b, _, err = balanceTx(tx, tenantID)
		return err
	})
	return b, err
}

func balanceTx(tx *gorm.DB, tenantID string) (Balance, BillingSettings, error) {
	set, err := settingsTx(tx)
	if err != nil {
		return Balance{}, set, err
	}
	cur := set.Currency
	var ten Tenant
	if err := tx.Where("id = ?", tenantID).Take(&ten).Error; err != nil {
		if errIsNotFound(err) {
			return Balance{}, set, notFound("tenant")
		}
		return Balance{}, set, err
	}
	var paid, credited, invoiced int64
	if err := tx.Model(&Payment{}).Where("tenant_id = ? AND kind = ?", tenantID, PaymentKind).Select("COALESCE(SUM(amount_minor), 0)").Row().Scan(&paid); err != nil {
		return Balance{}, set, err
	}
	if err := tx.Model(&Payment{}).Where("tenant_id = ? AND kind = ?", tenantID, CreditKind).Select("COALESCE(SUM(amount_minor), 0)").Row().Scan(&credited); err != nil {
		return Balance{}, set, err
	}
	if err := tx.Model(&Invoice{}).Where("tenant_id = ?", tenantID).Select("COALESCE(SUM(total_minor), 0)").Row().Scan(&invoiced); err != nil {
		return Balance{}, set, err
	}
	// Months not invoiced yet, each with its VAT as its invoice will have.
	var open []struct {
		Month string
		Sum   int64
	}
	if err := tx.Model(&UsageTotal{}).Select("month, SUM(amount_minor) AS sum").
		Where("tenant_id = ? AND month NOT IN (SELECT month FROM invoices WHERE tenant_id = ? AND kind = ?)", tenantID, tenantID, InvoiceKind).
		Group("month").Scan(&open).Error; err != nil {
		return Balance{}, set, err
	}
	var unbilled int64
	for _, m := range open {
		unbilled += m.Sum + VATAmount(m.Sum, set.VATBP)
	}
	b := Balance{Paid: Money{paid, cur}, Credited: Money{credited, cur}, Invoiced: Money{invoiced, cur}, Unbilled: Money{unbilled, cur},
		Balance: Money{paid + credited - invoiced - unbilled, cur}}
	limit := ten.CreditLimitMinor
	if limit == nil {
		limit = set.DefaultCreditLimitMinor
	}
	if limit != nil {
		b.CreditLimit = &Money{*limit, cur}
	}
	return b, set, nil
}

// SetCreditLimit sets how far below zero a tenant's balance may go before
// orders are refused (nil: the ISP's default).
func (s *Store) SetCreditLimit(ctx context.Context, a Actor, tenantID string, limitMinor *int64) error {
	if limitMinor != nil && (*limitMinor < 0 || *limitMinor > 100_000_000_00) {
		return E(ErrInvalid, "credit_limit", "the credit limit must be zero or more")
	}
	t := &Target{Type: "tenant", ID: tenantID, TenantID: tenantID}
	return s.change(ctx, a, "billing.credit_limit", t, func(tx *gorm.DB) error {
		ten, err := lockTenant(tx, tenantID)
		if err != nil {
			return err
		}
		t.Name = ten.Name
		return tx.Model(&Tenant{}).Where("id = ?", tenantID).Update("credit_limit_minor", limitMinor).Error
	})
}

// monthCost is the most one resource can cost in a month at price p.
func monthCost(p Price, start, end time.Time) int64 {
	return LineAmount(int64(end.Sub(start)/time.Hour), p.HourlyMicros, p.MonthlyCapMinor)
}

// checkCredit refuses an order whose resources could take the balance
// below the credit limit by the end of the month: the balance now, less
// what the tenant's live VMs and port forwards may still cost this month
// (their monthly price, less what they already used), less a whole month
// of the item ordered. It runs in the order's transaction, after the
// tenant row is locked, so parallel orders are counted one after another.
func (s *Store) checkCredit(tx *gorm.DB, tenantID, newItem string) error {
	b, set, err := balanceTx(tx, tenantID)
	if err != nil || b.CreditLimit == nil {
		return err
	}
	ts := s.now()
	month := MonthOf(ts)
	start, end, _ := MonthBounds(month)
	var prices []Price
	if err := tx.Where("effective_from <= ?", ts).Order("item, effective_from").Find(&prices).Error; err != nil {
		return err
	}
	book := newPriceBook(prices)
	var live []struct {
		ResourceKind, ResourceID, Item string
		Units                          int64
	}
	if err := tx.Model(&UsageRecord{}).Select("resource_kind, resource_id, item, units").
		Where("tenant_id = ? AND ended_at IS NULL", tenantID).Scan(&live).Error; err != nil {
		return err
	}
	// VMs ordered but not running yet have no usage record.
	var pending []string
	if err := tx.Model(&VM{}).Where("tenant_id = ? AND deleted_at IS NULL AND id NOT IN (SELECT resource_id FROM usage_records WHERE resource_kind = ?)", tenantID, ResourceVM).
		Pluck("plan_id", &pending).Error; err != nil {
		return err
	}
	var used []struct {
		ResourceID string
		Sum        int64
	}
	if err := tx.Model(&UsageTotal{}).Select("resource_id, SUM(amount_minor) AS sum").Where("tenant_id = ? AND month = ?", tenantID, month).
		Group("resource_id").Scan(&used).Error; err != nil {
		return err
	}
	usedBy := map[string]int64{}
	for _, u := range used {
		usedBy[u.ResourceID] = u.Sum
	}
	var ahead int64
	for _, r := range live {
		if p, ok := book.at(r.Item, ts); ok {
			month := LineAmount(int64(end.Sub(start)/time.Hour)*max(r.Units, 1), p.HourlyMicros, p.MonthlyCapMinor)
			ahead += max(0, month-usedBy[r.ResourceID])
		}
	}
	items := []string{newItem}
	for _, plan := range pending {
		items = append(items, PlanItem(plan))
	}
	for _, item := range items {
		if p, ok := book.at(item, ts); ok {
			ahead += monthCost(p, start, end)
		}
	}
	ahead += VATAmount(ahead, set.VATBP)
	after := Money{b.Balance.Minor - ahead, b.Balance.Currency}
	if after.Minor < -b.CreditLimit.Minor {
		return E(ErrCreditLimit, "", fmt.Sprintf("your balance is %s; with this order your resources could bring it to %s by the end of the month, over your %s credit limit. Pay the balance, or ask us to raise the limit",
			b.Balance, after, *b.CreditLimit))
	}
	return nil
}

// OverdueTenant is a tenant whose balance is below its limit.
type OverdueTenant struct {
	TenantID, Name string
	Balance        Balance
}

// OverdueTenants lists tenants whose balance is below their credit limit
// (below zero without one), most owing first. The balances are computed as
// GetBalance computes them, for every tenant that was ever billed in one
// aggregate query: a row per tenant and month not invoiced yet, since each
// month's VAT is rounded on its own.
func (s *Store) OverdueTenants(ctx context.Context) ([]OverdueTenant, error) {
	rows, err := s.db.WithContext(ctx).Raw(`
WITH billed AS (
	SELECT tenant_id FROM invoices UNION SELECT tenant_id FROM usage_totals
), paid AS (
	SELECT tenant_id,
		SUM(CASE WHEN kind = ? THEN amount_minor ELSE 0 END) AS paid,
		SUM(CASE WHEN kind = ? THEN amount_minor ELSE 0 END) AS credited
	FROM payments GROUP BY tenant_id
), invoiced AS (
	SELECT tenant_id, SUM(total_minor) AS invoiced FROM invoices GROUP BY tenant_id
), unbilled AS (
	SELECT u.tenant_id, u.month, SUM(u.amount_minor) AS amount
	FROM usage_totals u
	WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = u.tenant_id AND i.month = u.month AND i.kind = ?)
	GROUP BY u.tenant_id, u.month
)
SELECT t.id, t.name, t.credit_limit_minor, bs.currency, bs.vat_bp, bs.default_credit_limit_minor,
	COALESCE(paid.paid, 0), COALESCE(paid.credited, 0), COALESCE(invoiced.invoiced, 0), COALESCE(unbilled.amount, 0)
FROM tenants t
JOIN billed ON billed.tenant_id = t.id
CROSS JOIN billing_settings bs
LEFT JOIN paid ON paid.tenant_id = t.id
LEFT JOIN invoiced ON invoiced.tenant_id = t.id
LEFT JOIN unbilled ON unbilled.tenant_id = t.id
WHERE bs.id = 1
ORDER BY t.id`, PaymentKind, CreditKind, InvoiceKind).Rows()
	if err != nil {
		return nil, fmt.Errorf("overdue tenants: %w", err)
	}
	defer rows.Close()
	var (
		out   []OverdueTenant
		cur   *OverdueTenant
		limit *int64
	)
	flush := func() {
		if cur == nil {
			return
		}
		b := &cur.Balance
		b.Balance.Minor = b.Paid.Minor + b.Credited.Minor - b.Invoiced.Minor - b.Unbilled.Minor
		if limit != nil {
			b.CreditLimit = &Money{*limit, b.Balance.Currency}
		}
		if b.Overdue() {
			out = append(out, *cur)
		}
	}
	for rows.Next() {
		var (
			id, name, currency             string
			own, deflt                     *int64
			vatBP                          int
			paid, credited, invoiced, open int64
		)
		if err := rows.Scan(&id, &name, &own, &currency, &vatBP, &deflt, &paid, &credited, &invoiced, &open); err != nil {
			return nil, fmt.Errorf("overdue tenants: %w", err)
		}
		if cur == nil || cur.TenantID != id {
			flush()
			cur = &OverdueTenant{TenantID: id, Name: name, Balance: Balance{Paid: Money{paid, currency}, Credited: Money{credited, currency},
				Invoiced: Money{invoiced, currency}, Unbilled: Money{0, currency}, Balance: Money{0, currency}}}
			limit = own
			if limit == nil {
				limit = deflt
			}
		}
		cur.Balance.Unbilled.Minor += open + VATAmount(open, vatBP)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("overdue tenants: %w", err)
	}
	flush()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Balance.Balance.Minor < out[j].Balance.Balance.Minor })
	return out, nil
}

// Spend is a tenant's month so far and where it is heading.
type Spend struct {
	Month        string
	MeteredUntil *time.Time // nil: nothing metered yet this month
	Lines        []UsageTotal
	ToDate       Money // subtotal so far, before VAT
	Forecast     Money // subtotal by the month's end if the live resources keep going
	VATBP        int
}

// MonthSpend is the tenant's current month: usage metered so far and a
// forecast that meters the whole month as if every live VM and port
// forward kept going to its end, hour by hour at the prices in effect then,
// exactly as the month-end invoice will. Prices and the VAT rate come
// from the catalog cache (CatalogTTL); usage is always read fresh.
func (s *Store) MonthSpend(ctx context.Context, tenantID string) (Spend, error) {
	ts := s.now()
	month := MonthOf(ts)
	start, end, _ := MonthBounds(month)
	set, err := s.cachedBillingSettings(ctx)
	if err != nil {
		return Spend{}, err
	}
	lines, err := s.UsageTotals(ctx, tenantID, month)
	if err != nil {
		return Spend{}, err
	}
	sp := Spend{Month: month, Lines: lines, VATBP: set.VATBP, ToDate: Money{Currency: set.Currency}, Forecast: Money{Currency: set.Currency}}
	var metered time.Time
	for _, l := range lines {
		sp.ToDate.Minor += l.AmountMinor
		if l.MeteredUntil.After(metered) {
			metered = l.MeteredUntil
		}
	}
	if !metered.IsZero() {
		sp.MeteredUntil = &metered
	}
	prices, err := s.cachedPrices(ctx)
	if err != nil {
		return Spend{}, err
	}
	book := newPriceBook(prices)
	recs, err := s.UsageRecords(ctx, tenantID, month)
	if err != nil {
		return Spend{}, err
	}
	byResource := map[string][]UsageRecord{}
	var order []string
	for _, r := range recs {
		k := r.ResourceKind + "/" + r.ResourceID
		if _, ok := byResource[k]; !ok {
			order = append(order, k)
		}
		byResource[k] = append(byResource[k], r)
	}
	hours := int(end.Sub(start) / time.Hour)
	for _, k := range order {
		for _, t := range meterResource(byResource[k], book, month, start, end, hours) {
			sp.Forecast.Minor += t.AmountMinor
		}
	}
	// Usage already metered is never taken back: the forecast is at least
	// the month so far.
	sp.Forecast.Minor = max(sp.Forecast.Minor, sp.ToDate.Minor)
	return sp, nil
}
