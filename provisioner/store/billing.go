package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Price items: each plan has its own, port forwards share one, snapshots
// share one priced per GiB.
const (
	ItemPortForward = "port_forward"
	ItemSnapshotGiB = "snapshot-gib"
	itemPlanPrefix  = "plan:"
)

// PlanItem is the price item of a plan.
func PlanItem(planID string) string { return itemPlanPrefix + planID }

// Usage classes: what a resource was doing during a stretch of its life.
const (
	UsageRunning = "running" // a VM that runs
	UsageStopped = "stopped" // a VM that exists but does not run; bills unless its price says otherwise
	UsageActive  = "active"  // a port forward, or a ready snapshot
)

// Resource kinds that produce usage.
const (
	ResourceVM          = "vm"
	ResourcePortForward = "port_forward"
	ResourceSnapshot    = "snapshot"
)

// BillingSettings is the ISP's one set of billing settings.
type BillingSettings struct {
	ID       int
	Currency string
	VATBP    int `gorm:"column:vat_bp"` // basis points: 2100 is 21.00 %
	// InvoicePrefix starts every invoice and credit note number
	// ("FX-000042"); NextNumber is the next one, without gaps.
	InvoicePrefix string
	NextNumber    int64
	// DefaultCreditLimitMinor applies to tenants without a limit of their
	// own; nil: no limit.
	DefaultCreditLimitMinor *int64
	UpdatedAt               time.Time
}

// TableName keeps the table name plain.
func (BillingSettings) TableName() string { return "billing_settings" }

// Price is one version of an item's price.
type Price struct {
	ID              string
	Item            string
	HourlyMicros    int64
	MonthlyCapMinor int64
	BillStopped     bool
	EffectiveFrom   time.Time
	CreatedBy       string
	CreatedAt       time.Time
}

// TableName keeps the table name plain.
func (Price) TableName() string { return "prices" }

// UsageRecord is one stretch of a resource's life in one class.
type UsageRecord struct {
	ID           string
	TenantID     string
	ResourceKind string
	ResourceID   string
	ResourceName string
	Item         string
	Class        string
	// Units is how many units of the item it bills per hour: a snapshot's
	// GiB; 0 when created counts as 1.
	Units     int64
	StartedAt time.Time
	EndedAt   *time.Time
}

// TableName keeps the table name plain.
func (UsageRecord) TableName() string { return "usage_records" }

// UsageTotal is what one resource used in a month at one price version.
type UsageTotal struct {
	Month        string
	ResourceKind string
	ResourceID   string
	PriceID      string
	TenantID     string
	ResourceName string
	Item         string
	Units        int64 // per hour: a snapshot's GiB, 1 for anything else
	Hours        int64
	AmountMinor  int64
	MeteredUntil time.Time
}

// TableName keeps the table name plain.
func (UsageTotal) TableName() string { return "usage_totals" }

// GetBillingSettings reads the settings.
func (s *Store) GetBillingSettings(ctx context.Context) (BillingSettings, error) {
	var b BillingSettings
	if err := s.db.WithContext(ctx).Where("id = 1").Take(&b).Error; err != nil {
		return BillingSettings{}, fmt.Errorf("load billing settings: %w", err)
	}
	return b, nil
}

// SetBillingSettings changes the currency and the VAT rate. The currency
// can change only while no price exists, so that amounts never change
// currency under a customer.
func (s *Store) SetBillingSettings(ctx context.Context, a Actor, currency string, vatBP int) error {
	defer s.catalog.invalidate() // after the change is committed (or not)
	currency = strings.ToUpper(strings.TrimSpace(currency))
	if !ValidCurrency(currency) {
		return E(ErrInvalid, "currency", fmt.Sprintf("%q is not a currency the storefront bills in (EUR, USD, GBP, CHF, …)", currency))
	}
	if vatBP < 0 || vatBP > 5000 {
		return E(ErrInvalid, "vat", "VAT must be between 0 and 50 %")
	}
	t := &Target{Type: "billing_settings", Name: fmt.Sprintf("%s, VAT %d.%02d %%", currency, vatBP/100, vatBP%100)}
	return s.change(ctx, a, "billing.settings", t, func(tx *gorm.DB) error {
		var cur BillingSettings
		if err := tx.Where("id = 1").Take(&cur).Error; err != nil {
			return fmt.Errorf("load billing settings: %w", err)
		}
		if cur.Currency != currency {
			var n int64
			if err := tx.Model(&Price{}).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return E(ErrConflict, "currency", "the currency cannot change once prices exist")
			}
		}
		return tx.Model(&BillingSettings{}).Where("id = 1").
			Updates(map[string]any{"currency": currency, "vat_bp": vatBP, "updated_at": s.now()}).Error
	})
}

// PriceInput is a new price version.
type PriceInput struct {
	Item            string // PlanItem(id), ItemPortForward or ItemSnapshotGiB
	HourlyMicros    int64
	MonthlyCapMinor int64
	BillStopped     bool
	EffectiveFrom   time.Time // zero: from the current hour
}

// SetPrice adds a price version. It applies from the start of an hour,
// now or later, never to the past: usage already recorded keeps the price
// it had.
func (s *Store) SetPrice(ctx context.Context, a Actor, in PriceInput) (Price, error) {
	defer s.catalog.invalidate() // after the change is committed (or not)
	ts := s.now()
	hour := ts.Truncate(time.Hour)
	from := in.EffectiveFrom.UTC()
	if in.EffectiveFrom.IsZero() {
		from = hour
	}
	switch {
	case in.HourlyMicros < 0 || in.MonthlyCapMinor < 0:
		return Price{}, E(ErrInvalid, "hourly", "prices cannot be negative")
	case in.HourlyMicros > 1_000_000_000:
		return Price{}, E(ErrInvalid, "hourly", "the hourly rate must be at most 1000.00")
	case in.MonthlyCapMinor > 100_000_000:
		return Price{}, E(ErrInvalid, "monthly", "the monthly price must be at most 1,000,000.00")
	case in.MonthlyCapMinor > 0 && divRound(in.HourlyMicros*24*31, microsPerMinor) < in.MonthlyCapMinor:
		return Price{}, E(ErrInvalid, "monthly", "the monthly price is more than a whole month at the hourly rate; it is a cap, not a fee")
	case !from.Equal(from.Truncate(time.Hour)):
		return Price{}, E(ErrInvalid, "effective_from", "a price applies from the start of an hour")
	case from.Before(hour):
		return Price{}, E(ErrInvalid, "effective_from", "a price cannot apply to the past; usage already recorded keeps its price")
	}
	p := Price{ID: newID(), Item: in.Item, HourlyMicros: in.HourlyMicros, MonthlyCapMinor: in.MonthlyCapMinor,
		BillStopped: in.BillStopped, EffectiveFrom: from, CreatedBy: a.Email, CreatedAt: ts}
	t := &Target{Type: "price", ID: p.ID, Name: in.Item}
	err := s.change(ctx, a, "billing.price", t, func(tx *gorm.DB) error {
		switch {
		case in.Item == ItemPortForward:
			t.Name = "port forwards"
		case in.Item == ItemSnapshotGiB:
			t.Name = "snapshot GiB"
		case strings.HasPrefix(in.Item, itemPlanPrefix):
			var plan Plan
			if err := tx.Where("id = ?", strings.TrimPrefix(in.Item, itemPlanPrefix)).Take(&plan).Error; err != nil {
				if errIsNotFound(err) {
					return E(ErrNotFound, "item", "no such plan")
				}
				return err
			}
			t.Name = "plan " + plan.Name
		default:
			return E(ErrInvalid, "item", "a price is for a plan, for port forwards or for snapshot GiB ("+ItemSnapshotGiB+")")
		}
		// A later version already scheduled for the same hour is replaced;
		// versions in effect stay.
		if err := tx.Where("item = ? AND effective_from = ? AND effective_from > ?", in.Item, from, ts).Delete(&Price{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&p).Error; err != nil {
			if isDuplicate(err) {
				return E(ErrConflict, "effective_from", "a price for this hour is already in effect; choose a later hour")
			}
			return fmt.Errorf("add price: %w", err)
		}
		return nil
	})
	return p, err
}

// Prices lists every version, oldest first.
func (s *Store) Prices(ctx context.Context) ([]Price, error) {
	var ps []Price
	if err := s.db.WithContext(ctx).Order("item, effective_from").Find(&ps).Error; err != nil {
		return nil, fmt.Errorf("list prices: %w", err)
	}
	return ps, nil
}

// priceBook finds the version of an item in effect at a time.
type priceBook map[string][]Price // item → versions, oldest first

func newPriceBook(ps []Price) priceBook {
	b := priceBook{}
	for _, p := range ps {
		b[p.Item] = append(b[p.Item], p)
	}
	return b
}

// at is the version in effect at t, or false when the item had none yet.
func (b priceBook) at(item string, t time.Time) (Price, bool) {
	vs := b[item]
	for i := len(vs) - 1; i >= 0; i-- {
		if !vs[i].EffectiveFrom.After(t) {
			return vs[i], true
		}
	}
	return Price{}, false
}

// span is at, and also when the next version of item begins (zero when
// none does), until which the answer holds.
func (b priceBook) span(item string, t time.Time) (Price, bool, time.Time) {
	vs := b[item]
	for i := len(vs) - 1; i >= 0; i-- {
		if !vs[i].EffectiveFrom.After(t) {
			if i+1 < len(vs) {
				return vs[i], true, vs[i+1].EffectiveFrom
			}
			return vs[i], true, time.Time{}
		}
	}
	if len(vs) > 0 {
		return Price{}, false, vs[0].EffectiveFrom
	}
	return Price{}, false, time.Time{}
}

// CurrentPrice is the version of item in effect now.
func (s *Store) CurrentPrice(ctx context.Context, item string) (Price, bool, error) {
	var p Price
	err := s.db.WithContext(ctx).Where("item = ? AND effective_from <= ?", item, s.now()).Order("effective_from DESC").Take(&p).Error
	if errIsNotFound(err) {
		return Price{}, false, nil
	}
	if err != nil {
		return Price{}, false, fmt.Errorf("load price: %w", err)
	}
	return p, true, nil
}

// vmUsageClass is the usage class a VM state starts, "" for one that ends
// usage (deleted, or never running yet), and keep for states that carry on
// the class they follow (starting, error, deleting, …).
func vmUsageClass(state string) (class string, keep bool) {
	switch state {
	case VMRunning:
		return UsageRunning, false
	case VMStopped:
		return UsageStopped, false
	case VMDeleted:
		return "", false
	}
	return "", true
}

// meter moves a resource's usage to class at ts, inside tx: the open
// record is closed and, unless class is "", a new one opened. Nothing
// changes when the class stays the same.
func meter(tx *gorm.DB, ts time.Time, rec UsageRecord, class string) error {
	var open UsageRecord
	err := tx.Where("resource_kind = ? AND resource_id = ? AND ended_at IS NULL", rec.ResourceKind, rec.ResourceID).Take(&open).Error
	switch {
	case err == nil:
		if open.Class == class {
			return nil
		}
		if err := tx.Model(&UsageRecord{}).Where("id = ?", open.ID).Update("ended_at", ts).Error; err != nil {
			return fmt.Errorf("close usage: %w", err)
		}
	case !errIsNotFound(err):
		return fmt.Errorf("load usage: %w", err)
	}
	if class == "" {
		return nil
	}
	rec.ID, rec.Class, rec.StartedAt, rec.EndedAt = newID(), class, ts, nil
	if rec.Units < 1 {
		rec.Units = 1
	}
	if err := tx.Create(&rec).Error; err != nil {
		return fmt.Errorf("open usage: %w", err)
	}
	return nil
}

// meterVMState records the usage a VM state change starts or ends, in tx.
func (s *Store) meterVMState(tx *gorm.DB, vmID, state string) error {
	class, keep := vmUsageClass(state)
	if keep {
		return nil
	}
	var vm VM
	if err := tx.Where("id = ?", vmID).Take(&vm).Error; err != nil {
		return fmt.Errorf("load vm for usage: %w", err)
	}
	ts := s.now()
	if err := meter(tx, ts, UsageRecord{TenantID: vm.TenantID, ResourceKind: ResourceVM, ResourceID: vm.ID,
		ResourceName: vm.Name, Item: PlanItem(vm.PlanID)}, class); err != nil {
		return err
	}
	if state != VMDeleted {
		return nil
	}
	// Its port forwards go with it.
	var ids []string
	if err := tx.Model(&UsageRecord{}).Joins("JOIN port_forwards ON port_forwards.id = usage_records.resource_id").
		Where("usage_records.resource_kind = ? AND usage_records.ended_at IS NULL AND port_forwards.vm_id = ?", ResourcePortForward, vmID).
		Pluck("usage_records.id", &ids).Error; err != nil {
		return fmt.Errorf("find port forward usage: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	return tx.Model(&UsageRecord{}).Where("id IN ?", ids).Update("ended_at", ts).Error
}
