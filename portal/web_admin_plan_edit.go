package portal

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/views"
)

// adminPlanEditView loads the plan with id; GetPlan also matches names, but
// the edit page lives at the plan's id only.
func (s *Server) adminPlanEditView(c *fiber.Ctx, id string) (views.AdminPlanEditView, error) {
	ctx := c.UserContext()
	p, err := s.store.GetPlan(ctx, id)
	if err != nil {
		return views.AdminPlanEditView{}, err
	}
	if p.ID != id {
		return views.AdminPlanEditView{}, errNotFound("plan")
	}
	usage, err := s.store.PlanUsage(ctx)
	if err != nil {
		return views.AdminPlanEditView{}, err
	}
	return views.AdminPlanEditView{
		Page: s.page(c, "Plan "+p.Name, "admin-plans"), ID: p.ID, Name: p.Name, VMCount: int(usage[p.ID]),
		Form: views.AdminPlanForm{Name: p.Name, VCPUs: strconv.FormatInt(p.VCPUs, 10), MemoryMiB: strconv.FormatInt(p.MemoryMiB, 10),
			DiskGiB: strconv.FormatInt(p.DiskGiB, 10), Enabled: p.Enabled},
	}, nil
}

// webAdminPlanEdit shows the form for one plan.
func (s *Server) webAdminPlanEdit(c *fiber.Ctx) error {
	v, err := s.adminPlanEditView(c, c.Params("id"))
	if err != nil {
		return err
	}
	return s.render(c, views.AdminPlanEdit(v))
}

// webAdminPlanUpdate changes a plan; unticking enabled stops new orders of it
// while existing VMs keep their size.
func (s *Server) webAdminPlanUpdate(c *fiber.Ctx) error {
	v, err := s.adminPlanEditView(c, c.Params("id"))
	if err != nil {
		return err
	}
	in, form, errs := adminPlanForm(c, true)
	if errs == nil {
		p, err := s.store.UpdatePlan(c.UserContext(), s.actor(c), v.ID, in)
		if err == nil {
			return s.redirect(c, "/admin/plans", "success", "Plan "+p.Name+" saved.")
		}
		if errs, err = formFailure(c, err, append(adminPlanFields(), "enabled")...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v.Form, v.Errors = form, errs
	return s.render(c, views.AdminPlanEdit(v))
}
