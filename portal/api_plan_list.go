package portal

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// apiPlanList shows the offered plans and whether one more VM of each fits
// on some host now and, for customers, in their quota.
func (s *Server) apiPlanList(c *fiber.Ctx) error {
	ctx := c.UserContext()
	plans, err := s.store.ListPlans(ctx, true)
	if err != nil {
		return err
	}
	id := who(c)
	var limits, used store.Quota
	if !id.staff() {
		if limits, used, err = s.store.QuotaUsage(ctx, id.User.Tenant()); err != nil {
			return err
		}
	}
	capacity, err := s.store.PlanCapacity(ctx, plans)
	if err != nil {
		return err
	}
	prices, currency, err := s.planPrices(ctx, plans)
	if err != nil {
		return err
	}
	items := make([]planJSON, len(plans))
	for i, p := range plans {
		items[i] = planJSON{ID: p.ID, Name: p.Name, VCPUs: p.VCPUs, MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB, Fits: true}
		if pr, ok := prices[p.ID]; ok {
			items[i].Price = newPriceJSON(pr, currency)
		}
		fit := capacity[p.ID]
		if !id.staff() {
			fit = planFit(limits, used, p, capacity)
		}
		if fit != nil {
			items[i].Fits, items[i].Reason = false, fit.Error()
		}
	}
	return c.JSON(newItems(items))
}

// planPrices is the current price of each plan that has one, and the
// currency.
func (s *Server) planPrices(ctx context.Context, plans []store.Plan) (map[string]store.Price, string, error) {
	b, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return nil, "", err
	}
	out := map[string]store.Price{}
	for _, p := range plans {
		pr, ok, err := s.store.CurrentPrice(ctx, store.PlanItem(p.ID))
		if err != nil {
			return nil, "", err
		}
		if ok {
			out[p.ID] = pr
		}
	}
	return out, b.Currency, nil
}
