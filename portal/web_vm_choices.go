package portal

import (
	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// fillChoices adds what the VM page's plan change and rebuild forms
// offer, for writers while the VM can take them: the other plans, each
// with the refusal the resize would meet now, and the VM images.
func (s *Server) fillChoices(c *fiber.Ctx, v *views.VMDetailView, imageID string) error {
	switch v.VM.State {
	case store.VMRunning, store.VMStopped, store.VMError:
	default:
		return nil
	}
	if !v.CanWrite {
		return nil
	}
	ctx := c.UserContext()
	choices, err := s.store.ResizeChoices(ctx, who(c).User.Tenant(), v.VM.ID)
	if err != nil {
		return err
	}
	plans := make([]store.Plan, len(choices))
	for i, ch := range choices {
		plans[i] = ch.Plan
	}
	prices, currency, err := s.planPrices(ctx, plans)
	if err != nil {
		return err
	}
	billing, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return err
	}
	for _, ch := range choices {
		p := ch.Plan
		o := views.PlanOption{ID: p.ID, Name: p.Name, VCPUs: int(p.VCPUs), MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB, Fits: ch.Err == nil}
		if pr, ok := prices[p.ID]; ok {
			o.Price, o.Total = priceText(pr, currency, billing.VATBP)
		}
		if ch.Err != nil {
			o.Reason = classify(ch.Err).message
		}
		v.Plans = append(v.Plans, o)
	}
	images, err := s.store.ListImages(ctx, true, store.ImageVM)
	if err != nil {
		return err
	}
	v.ImageID = imageID
	own := false
	for _, im := range images {
		own = own || im.ID == imageID
		v.Images = append(v.Images, views.ImageOption{ID: im.ID, Name: im.Name, OS: im.OS, Version: im.Version})
	}
	if !own {
		// The VM's own image stays the default even when no longer offered.
		v.Images = append([]views.ImageOption{{ID: imageID, Name: v.VM.Image}}, v.Images...)
	}
	return nil
}
