package portal

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminPlanFields are the plan form's inputs besides the enabled checkbox.
func adminPlanFields() []string { return []string{"name", "vcpus", "memory_mib", "disk_gib"} }

// adminPlanForm reads a submitted plan form: the input for the store, the
// values as typed, and inline errors for numbers that are not numbers.
func adminPlanForm(c *fiber.Ctx, withEnabled bool) (store.PlanInput, views.AdminPlanForm, views.FormErrors) {
	nums, raw, errs := adminFormInts(c, "vcpus", "memory_mib", "disk_gib")
	f := views.AdminPlanForm{Name: strings.TrimSpace(c.FormValue("name")), VCPUs: raw[0], MemoryMiB: raw[1], DiskGiB: raw[2]}
	in := store.PlanInput{Name: f.Name, VCPUs: nums[0], MemoryMiB: nums[1], DiskGiB: nums[2]}
	if withEnabled {
		f.Enabled = c.FormValue("enabled") == "on"
		in.Enabled = f.Enabled
	}
	return in, f, errs
}

func (s *Server) adminPlansView(c *fiber.Ctx) (views.AdminPlansView, error) {
	ctx := c.UserContext()
	plans, err := s.store.ListPlans(ctx, false)
	if err != nil {
		return views.AdminPlansView{}, err
	}
	usage, err := s.store.PlanUsage(ctx)
	if err != nil {
		return views.AdminPlansView{}, err
	}
	v := views.AdminPlansView{Page: s.page(c, "Plans", "admin-plans"), Plans: make([]views.AdminPlanRow, len(plans))}
	for i, p := range plans {
		v.Plans[i] = views.AdminPlanRow{ID: p.ID, Name: p.Name, VCPUs: p.VCPUs, MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB,
			Enabled: p.Enabled, VMCount: int(usage[p.ID])}
	}
	return v, nil
}

// webAdminPlanList shows every plan, enabled or not, with the VMs using it.
func (s *Server) webAdminPlanList(c *fiber.Ctx) error {
	v, err := s.adminPlansView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminPlans(v))
}

// webAdminPlanCreate adds a plan; new plans are offered at once.
func (s *Server) webAdminPlanCreate(c *fiber.Ctx) error {
	in, form, errs := adminPlanForm(c, false)
	in.Enabled = true // new plans are offered at once
	if errs == nil {
		p, err := s.store.CreatePlan(c.UserContext(), s.actor(c), in)
		if err == nil {
			return s.redirect(c, "/admin/plans", "success", "Plan "+p.Name+" created.")
		}
		if errs, err = formFailure(c, err, adminPlanFields()...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v, err := s.adminPlansView(c)
	if err != nil {
		return err
	}
	v.Form, v.Errors = form, errs
	return s.render(c, views.AdminPlans(v))
}
