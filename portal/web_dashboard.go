package portal

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// recentVMs is how many VMs the dashboard lists.
const recentVMs = 5

func (s *Server) webDashboard(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id := who(c)
	tenantID := id.User.Tenant()
	// The tenant's limits were read with the session, in this request.
	limits := id.Tenant.Quota()
	used, err := s.store.TenantUsage(ctx, tenantID)
	if err != nil {
		return err
	}
	vms, err := s.store.RecentVMs(ctx, tenantID, recentVMs)
	if err != nil {
		return err
	}
	plans, err := s.store.OfferedPlans(ctx)
	if err != nil {
		return err
	}
	v := views.DashboardView{Page: s.page(c, "Dashboard", "dashboard"), Quotas: quotaRows(limits, used)}
	for _, vm := range vms {
		v.RecentVMs = append(v.RecentVMs, vmRow(vm))
	}
	capacity, err := s.store.PlanCapacity(ctx, plans)
	if err != nil {
		return err
	}
	v.CanCreate, v.CreateHint, v.Reason = canCreate(id, plans, limits, used, capacity)
	if id.User.Role == store.RoleOwner {
		sp, err := s.store.MonthSpend(ctx, id.User.Tenant())
		if err != nil {
			return err
		}
		v.ShowSpend, v.Month, v.ToDate, v.Forecast = true, sp.Month, sp.ToDate.String(), sp.Forecast.String()
	}
	return s.render(c, views.Dashboard(v))
}

// quotaRows lists the tenant's limits the way the quota bars show them.
func quotaRows(limits, used store.Quota) []views.QuotaRow {
	return []views.QuotaRow{
		{Key: "instances", Label: "Instances", Used: used.Instances, Limit: limits.Instances},
		{Key: "vcpus", Label: "vCPUs", Used: used.VCPUs, Limit: limits.VCPUs},
		{Key: "memory", Label: "Memory", Used: used.MemoryMiB, Limit: limits.MemoryMiB, Unit: "MiB"},
		{Key: "disk", Label: "Disk", Used: used.DiskGiB, Limit: limits.DiskGiB, Unit: "GiB"},
		{Key: "ssh_keys", Label: "SSH keys", Used: used.SSHKeys, Limit: limits.SSHKeys},
		{Key: "port_forwards", Label: "Port forwards", Used: used.PortForwards, Limit: limits.PortForwards},
	}
}

// canCreate decides whether the user can order a VM now: the hint says what
// is left, the reason why nothing can be ordered.
func canCreate(id *identity, plans []store.Plan, limits, used store.Quota, capacity map[string]error) (ok bool, hint, reason string) {
	switch {
	case id.Tenant != nil && id.Tenant.Status == store.TenantSuspended:
		return false, "", "Your account is suspended, so no new VMs can be created."
	case !id.canWriteTenant():
		return false, "", "Your role allows reading only; ask an owner of your organisation to create VMs."
	case len(plans) == 0:
		return false, "", "No plans are offered at the moment; please check back later."
	}
	for _, p := range plans {
		if planFit(limits, used, p, capacity) == nil {
			return true, "You can still create " + leftText(limits.Left(used)), ""
		}
	}
	// Plans come smallest first: if the smallest does not fit, its reason
	// is the one that matters.
	return false, "", planFit(limits, used, plans[0], capacity).Error()
}

// leftText is "3 instances (4 vCPU, 6 GiB RAM, 80 GiB disk)".
func leftText(left store.Quota) string {
	return fmt.Sprintf("%d instance%s (%d vCPU, %s RAM, %d GiB disk)", left.Instances, plural(int(left.Instances)),
		left.VCPUs, store.FormatMiB(left.MemoryMiB), left.DiskGiB)
}

// capitalize starts a store message, which is written to follow a colon,
// as a sentence.
func capitalize(msg string) string {
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}
