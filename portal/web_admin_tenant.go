package portal

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminTenantVMs bounds the VMs listed on a tenant's page; the full list is
// on /admin/vms.
const adminTenantVMs = 50

// adminTenantView loads everything the tenant page shows.
func (s *Server) adminTenantView(c *fiber.Ctx, id string) (views.AdminTenantView, error) {
	ctx := c.UserContext()
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return views.AdminTenantView{}, err
	}
	limits, used, err := s.store.QuotaUsage(ctx, id)
	if err != nil {
		return views.AdminTenantView{}, err
	}
	members, err := s.store.ListMembers(ctx, id)
	if err != nil {
		return views.AdminTenantView{}, err
	}
	vms, _, err := s.store.ListAllVMs(ctx, store.VMFilter{TenantID: id}, store.Page{Number: 1, PerPage: adminTenantVMs})
	if err != nil {
		return views.AdminTenantView{}, err
	}
	v := views.AdminTenantView{
		Page: s.page(c, t.Name, "admin-tenants"), ID: t.ID, Name: t.Name, Status: t.Status,
		SuspendReason: t.SuspendReason, CreatedAt: t.CreatedAt, Quota: adminQuotaFields(limits, used),
		Members: make([]views.AdminTenantMemberRow, len(members)), VMs: make([]views.AdminTenantVMRow, len(vms)),
	}
	for i, m := range members {
		v.Members[i] = views.AdminTenantMemberRow{Email: m.Email, Role: m.Role, CreatedAt: m.CreatedAt}
	}
	for i, vm := range vms {
		v.VMs[i] = views.AdminTenantVMRow{ID: vm.ID, Name: vm.Name, State: vm.State, Plan: vm.PlanName, CreatedAt: vm.CreatedAt}
	}
	bal, err := s.store.GetBalance(ctx, id)
	if err != nil {
		return v, err
	}
	v.Billing = views.AdminTenantBilling{Balance: bal.Balance.String(), Owing: bal.Overdue()}
	if bal.CreditLimit != nil {
		v.Billing.CreditLimit = bal.CreditLimit.String()
	}
	if t.CreditLimitMinor != nil {
		v.Billing.LimitValue = store.Money{Minor: *t.CreditLimitMinor, Currency: bal.Balance.Currency}.Decimal()
	}
	payments, _, err := s.store.ListPayments(ctx, id, store.Page{PerPage: 10})
	if err != nil {
		return v, err
	}
	for _, p := range payments {
		v.Billing.Payments = append(v.Billing.Payments, views.PaymentRow{Kind: p.Kind, Amount: store.Money{Minor: p.AmountMinor, Currency: bal.Balance.Currency}.String(),
			Reference: p.Reference, Note: p.Note, RecordedBy: p.RecordedBy, RecordedAt: p.RecordedAt.UTC().Format("2006-01-02 15:04")})
	}
	invoices, _, err := s.store.ListInvoices(ctx, id, store.Page{PerPage: 12})
	if err != nil {
		return v, err
	}
	v.Billing.Invoices = invoiceRows(invoices)
	return v, nil
}

// webAdminTenantPayment records a payment or credit from the tenant page.
func (s *Server) webAdminTenantPayment(c *fiber.Ctx) error {
	id := c.Params("id")
	amount, err := store.ParseAmount(c.FormValue("amount"))
	if err != nil {
		err = store.E(store.ErrInvalid, "amount", "give the amount with at most two decimals, like 25.00")
	} else {
		_, err = s.store.RecordPayment(c.UserContext(), s.actor(c), id, c.FormValue("kind"), amount, c.FormValue("reference"), c.FormValue("note"))
	}
	if err != nil {
		return s.adminTenantFailed(c, id, err, "amount", "reference", "kind")
	}
	return s.redirect(c, adminTenantPath(id), "success", "Recorded.")
}

// webAdminTenantCreditLimit sets the tenant's credit limit; empty is the default.
func (s *Server) webAdminTenantCreditLimit(c *fiber.Ctx) error {
	id := c.Params("id")
	var limit *int64
	var err error
	if raw := strings.TrimSpace(c.FormValue("credit_limit")); raw != "" {
		var v int64
		if v, err = store.ParseAmount(raw); err != nil {
			err = store.E(store.ErrInvalid, "credit_limit", "give the limit with at most two decimals, like 10.00, or leave it empty")
		}
		limit = &v
	}
	if err == nil {
		err = s.store.SetCreditLimit(c.UserContext(), s.actor(c), id, limit)
	}
	if err != nil {
		return s.adminTenantFailed(c, id, err, "credit_limit")
	}
	return s.redirect(c, adminTenantPath(id), "success", "Credit limit saved.")
}

func (s *Server) adminTenantFailed(c *fiber.Ctx, id string, err error, fields ...string) error {
	v, verr := s.adminTenantView(c, id)
	if verr != nil {
		return verr
	}
	if v.Errors, err = formFailure(c, err, fields...); err != nil {
		return err
	}
	return s.render(c, views.AdminTenant(v))
}

// webAdminTenant shows one tenant with its quota, members and VMs.
func (s *Server) webAdminTenant(c *fiber.Ctx) error {
	v, err := s.adminTenantView(c, c.Params("id"))
	if err != nil {
		return err
	}
	return s.render(c, views.AdminTenant(v))
}

// webAdminTenantQuota sets a tenant's limits. Nothing changes unless all six
// fields are valid.
func (s *Server) webAdminTenantQuota(c *fiber.Ctx) error {
	v, err := s.adminTenantView(c, c.Params("id"))
	if err != nil {
		return err
	}
	q, errs := adminQuotaForm(c, v.Quota)
	if errs == nil {
		err = s.store.SetTenantQuota(c.UserContext(), s.actor(c), v.ID, q)
		if err == nil {
			return s.redirect(c, adminTenantPath(v.ID), "success", "Quota of "+v.Name+" saved.")
		}
		if errs, err = formFailure(c, err, adminQuotaNames()...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v.Errors = errs
	return s.render(c, views.AdminTenant(v))
}

func adminTenantPath(id string) string { return "/admin/tenants/" + url.PathEscape(id) }
