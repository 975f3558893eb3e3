package portal

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// vmNewView builds the order form: every enabled plan, marked whether it
// fits what is left of the quota and on some host, and the tenant's images
// and keys.
func (s *Server) vmNewView(c *fiber.Ctx) (views.VMNewView, error) {
	ctx := c.UserContext()
	tenantID := who(c).User.Tenant()
	limits, used, err := s.store.QuotaUsage(ctx, tenantID)
	if err != nil {
		return views.VMNewView{}, err
	}
	plans, err := s.store.ListPlans(ctx, true)
	if err != nil {
		return views.VMNewView{}, err
	}
	images, err := s.store.ListImages(ctx, true, store.ImageVM)
	if err != nil {
		return views.VMNewView{}, err
	}
	keys, _, err := s.store.ListSSHKeys(ctx, tenantID, store.Page{Number: 1, PerPage: store.MaxPerPage})
	if err != nil {
		return views.VMNewView{}, err
	}
	capacity, err := s.store.PlanCapacity(ctx, plans)
	if err != nil {
		return views.VMNewView{}, err
	}
	prices, currency, err := s.planPrices(ctx, plans)
	if err != nil {
		return views.VMNewView{}, err
	}
	billing, err := s.store.GetBillingSettings(ctx)
	if err != nil {
		return views.VMNewView{}, err
	}
	v := views.VMNewView{Page: s.page(c, "Create a VM", "vms"), Remaining: "Left in your quota: " + remainingText(limits.Left(used))}
	for _, p := range plans {
		o := views.PlanOption{ID: p.ID, Name: p.Name, VCPUs: int(p.VCPUs), MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB, Fits: true}
		if pr, ok := prices[p.ID]; ok {
			o.Price, o.Total = priceText(pr, currency, billing.VATBP)
		}
		if err := planFit(limits, used, p, capacity); err != nil {
			o.Fits, o.Reason = false, err.Error()
		}
		v.Plans = append(v.Plans, o)
	}
	for _, im := range images {
		v.Images = append(v.Images, views.ImageOption{ID: im.ID, Name: im.Name, OS: im.OS, Version: im.Version})
	}
	snaps, err := s.store.ReadySnapshots(ctx, tenantID)
	if err != nil {
		return views.VMNewView{}, err
	}
	for _, sn := range snaps {
		v.Snapshots = append(v.Snapshots, views.SnapshotOption{ID: sn.ID,
			Label: fmt.Sprintf("%s, of %s (needs a plan with %d GiB disk or more)", sn.Name, sn.VMName, sn.VMDiskGiB)})
	}
	for _, k := range keys {
		v.Keys = append(v.Keys, views.KeyOption{ID: k.ID, Name: k.Name, Fingerprint: k.Fingerprint})
	}
	return v, nil
}

// remainingText is "3 instances, 4 vCPU, 6 GiB RAM, 80 GiB disk".
func remainingText(left store.Quota) string {
	return itoa(int(left.Instances)) + " instance" + plural(int(left.Instances)) + ", " + itoa(int(left.VCPUs)) + " vCPU, " +
		store.FormatMiB(left.MemoryMiB) + " RAM, " + itoa(int(left.DiskGiB)) + " GiB disk"
}

func (s *Server) webVMNew(c *fiber.Ctx) error {
	v, err := s.vmNewView(c)
	if err != nil {
		return err
	}
	// Preselect the only choice there is, so a new customer has less to click.
	if len(v.Keys) == 1 {
		v.KeyIDs = []string{v.Keys[0].ID}
	}
	return s.render(c, views.VMNew(v))
}

func (s *Server) webVMCreate(c *fiber.Ctx) error {
	order := store.VMOrder{
		Name:     strings.TrimSpace(c.FormValue("name")),
		Plan:     c.FormValue("plan"),
		Image:    c.FormValue("image"),
		Snapshot: c.FormValue("snapshot"),
		SSHKeys:  formValues(c, "ssh_keys"),
		UserData: c.FormValue("user_data"),
	}
	vm, err := s.store.CreateVM(c.UserContext(), s.actor(c), who(c).User.Tenant(), order)
	if err == nil {
		return s.redirect(c, "/vms/"+vm.ID, "success", "VM "+vm.Name+" ordered; it is pending until the provisioner picks it up.")
	}
	errs, err := formFailure(c, err, "name", "plan", "image", "snapshot", "ssh_keys", "user_data")
	if err != nil {
		return err
	}
	v, err := s.vmNewView(c)
	if err != nil {
		return err
	}
	v.Errors, v.Name, v.PlanID, v.ImageID, v.KeyIDs, v.UserData = errs, order.Name, order.Plan, order.Image, order.SSHKeys, order.UserData
	v.Snapshot = order.Snapshot
	return s.render(c, views.VMNew(v))
}

// formValues returns every value of a repeated form field (checkboxes), from
// an urlencoded or a multipart body, as strings of their own.
func formValues(c *fiber.Ctx, key string) []string {
	var out []string
	if strings.HasPrefix(string(c.Request().Header.ContentType()), fiber.MIMEMultipartForm) {
		if f, err := c.MultipartForm(); err == nil {
			for _, v := range f.Value[key] {
				out = append(out, strings.Clone(v))
			}
		}
		return out
	}
	for _, b := range c.Request().PostArgs().PeekMulti(key) {
		out = append(out, string(b))
	}
	return out
}

// priceText words a price for the order form: "€0.006 an hour, up to €4.00
// a month", and the order's total with VAT, "up to €4.84 a month, VAT
// included" (for an uncapped price, a 30-day month's worth).
func priceText(p store.Price, currency string, vatBP int) (price, total string) {
	price = store.FormatRate(p.HourlyMicros, currency) + " an hour"
	month := p.MonthlyCapMinor
	if month > 0 {
		price += ", up to " + store.Money{Minor: month, Currency: currency}.String() + " a month"
	} else {
		month = store.LineAmount(30*24, p.HourlyMicros, 0)
	}
	withVAT := store.Money{Minor: month + store.VATAmount(month, vatBP), Currency: currency}
	total = "up to " + withVAT.String() + " a month"
	if vatBP > 0 {
		total += ", VAT included"
	}
	if !p.BillStopped {
		price += "; nothing while stopped"
	}
	return price, total
}
