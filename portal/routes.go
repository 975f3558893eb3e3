package portal

import (
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/fibrixcloud/fibrix/static"
)

// apiPrefix is where the JSON API lives.
const apiPrefix = "/api/v1"

// routes is the whole URL space of the portal. Guards run left to right:
// tenantOnly/staffOnly decide who may see, tenantWrite/ownerOnly/
// staffOperate/staffAdmin who may change.
func (s *Server) routes() *fiber.App {
	cfg := fiber.Config{
		AppName:               "Fibrix Cloud",
		BodyLimit:             maxBody,
		ReadTimeout:           s.cfg.ReadTimeout,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
	}
	if s.cfg.TrustProxy {
		cfg.ProxyHeader = fiber.HeaderXForwardedFor
	}
	app := fiber.New(cfg)
	app.Use(s.observe, recover.New(), secureHeaders, limitBody)

	app.Get("/healthz", s.handleHealth)
	app.Get("/metrics", s.handleMetrics)
	app.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(static.FS), MaxAge: 3600}))

	app.Use(s.authenticate, s.csrf)

	// Pages: everyone.
	app.Get("/", s.webHome)
	app.Get("/login", s.webLoginForm)
	app.Post("/login", s.webLogin)
	app.Get("/login/code", s.webLoginCodeForm)
	app.Post("/login/code", s.webLoginCode)
	app.Get("/signup", s.webSignupForm)
	app.Post("/signup", s.webSignup)
	app.Get("/signup/confirm/:token", s.webSignupConfirmForm)
	app.Post("/signup/confirm/:token", s.webSignupConfirm)
	app.Post("/logout", s.webLogout)
	app.Get("/invite/:token", s.webInviteForm)
	app.Post("/invite/:token", s.webInviteAccept)

	// Pages: customers.
	app.Get("/dashboard", tenantOnly, s.webDashboard)
	app.Get("/vms", tenantOnly, s.webVMList)
	app.Get("/vms/new", tenantOnly, tenantWrite, s.webVMNew)
	app.Post("/vms", tenantOnly, tenantWrite, s.webVMCreate)
	app.Get("/billing", tenantOnly, ownerRead, s.webBilling)
	app.Get("/billing/invoices/:id", tenantOnly, ownerRead, s.webInvoice)
	app.Get("/vms/:id", tenantOnly, s.webVMDetail)
	app.Get("/vms/:id/status", tenantOnly, s.webVMStatus)
	app.Post("/vms/:id/actions", tenantOnly, tenantWrite, s.webVMAction)
	app.Post("/vms/:id/delete", tenantOnly, tenantWrite, s.webVMDelete)
	app.Post("/vms/:id/exposure", tenantOnly, tenantWrite, s.webVMExposure)
	app.Post("/vms/:id/forwards", tenantOnly, tenantWrite, s.webVMForwardCreate)
	app.Post("/vms/:id/forwards/:fid/delete", tenantOnly, tenantWrite, s.webVMForwardDelete)
	app.Get("/ssh-keys", tenantOnly, s.webSSHKeyList)
	app.Post("/ssh-keys", tenantOnly, tenantWrite, s.webSSHKeyCreate)
	app.Post("/ssh-keys/:id/delete", tenantOnly, tenantWrite, s.webSSHKeyDelete)
	app.Get("/dns", tenantOnly, s.webDNS)
	app.Post("/dns/records", tenantOnly, tenantWrite, s.webDNSRecordCreate)
	app.Post("/dns/records/:id/delete", tenantOnly, tenantWrite, s.webDNSRecordDelete)
	app.Get("/account", signedIn, s.webAccount)
	app.Post("/account/password", signedIn, s.webPasswordChange)
	app.Post("/account/sign-out-everywhere", signedIn, s.webSignOutEverywhere)
	app.Post("/account/two-factor", signedIn, sessionOnly, s.webTwoFactorSetup)
	app.Post("/account/two-factor/enable", signedIn, sessionOnly, s.webTwoFactorEnable)
	app.Post("/account/two-factor/recovery-codes", signedIn, sessionOnly, s.webRecoveryCodes)
	app.Post("/account/two-factor/disable", signedIn, sessionOnly, s.webTwoFactorDisable)
	app.Post("/account/invitations", tenantOnly, ownerOnly, s.webInvitationCreate)
	app.Post("/account/invitations/:id/delete", tenantOnly, ownerOnly, s.webInvitationDelete)
	app.Post("/account/members/:id/role", tenantOnly, ownerOnly, s.webMemberRole)
	app.Post("/account/members/:id/delete", tenantOnly, ownerOnly, s.webMemberDelete)
	app.Get("/account/tokens", signedIn, s.webTokenList)
	app.Post("/account/tokens", signedIn, s.webTokenCreate)
	app.Post("/account/tokens/:id/delete", signedIn, s.webTokenDelete)
	app.Get("/audit", tenantOnly, s.webAudit)

	// Pages: staff.
	app.Get("/admin", staffOnly, s.webAdminHome)
	app.Get("/admin/tenants", staffOnly, s.webAdminTenantList)
	app.Get("/admin/tenants/:id", staffOnly, s.webAdminTenant)
	app.Post("/admin/tenants/:id/quota", staffOnly, staffOperate, s.webAdminTenantQuota)
	app.Post("/admin/tenants/:id/suspend", staffOnly, staffOperate, s.webAdminTenantSuspend)
	app.Post("/admin/tenants/:id/unsuspend", staffOnly, staffOperate, s.webAdminTenantUnsuspend)
	app.Get("/admin/quotas", staffOnly, s.webAdminQuotas)
	app.Post("/admin/quotas", staffOnly, staffAdmin, s.webAdminQuotasUpdate)
	app.Get("/admin/users", staffOnly, s.webAdminUserList)
	app.Post("/admin/users", staffOnly, staffAdmin, s.webAdminUserCreate)
	app.Post("/admin/users/two-factor", staffOnly, staffAdmin, s.webAdminStaffTwoFactor)
	app.Get("/admin/plans", staffOnly, s.webAdminPlanList)
	app.Post("/admin/plans", staffOnly, staffAdmin, s.webAdminPlanCreate)
	app.Get("/admin/plans/:id", staffOnly, s.webAdminPlanEdit)
	app.Post("/admin/plans/:id", staffOnly, staffAdmin, s.webAdminPlanUpdate)
	app.Get("/admin/images", staffOnly, s.webAdminImageList)
	app.Post("/admin/images", staffOnly, staffAdmin, s.webAdminImageCreate)
	app.Get("/admin/images/:id", staffOnly, s.webAdminImageEdit)
	app.Post("/admin/images/:id", staffOnly, staffAdmin, s.webAdminImageUpdate)
	app.Get("/admin/vms", staffOnly, s.webAdminVMList)
	app.Get("/admin/vms/:id", staffOnly, s.webAdminVM)
	app.Post("/admin/vms/:id/retry", staffOnly, staffOperate, s.webAdminVMRetry)
	app.Get("/admin/hosts", staffOnly, s.webAdminHostList)
	app.Post("/admin/hosts", staffOnly, staffAdmin, s.webAdminHostCreate)
	app.Get("/admin/hosts/:id", staffOnly, s.webAdminHost)
	app.Post("/admin/hosts/:id", staffOnly, staffAdmin, s.webAdminHostUpdate)
	app.Post("/admin/hosts/:id/delete", staffOnly, staffAdmin, s.webAdminHostDelete)
	app.Get("/admin/subnets", staffOnly, s.webAdminSubnetList)
	app.Post("/admin/subnets", staffOnly, staffAdmin, s.webAdminSubnetCreate)
	app.Post("/admin/subnets/:id/delete", staffOnly, staffAdmin, s.webAdminSubnetDelete)
	app.Get("/admin/machines", staffOnly, s.webAdminMachineList)
	app.Post("/admin/machines", staffOnly, staffAdmin, s.webAdminMachineCreate)
	app.Post("/admin/machines/deploy-keys", staffOnly, staffAdmin, s.webAdminDeployKeys)
	app.Post("/admin/discovered/:id/enlist", staffOnly, staffAdmin, s.webAdminMachineEnlistDiscovered)
	app.Get("/admin/machines/:id", staffOnly, s.webAdminMachine)
	app.Post("/admin/machines/:id", staffOnly, staffAdmin, s.webAdminMachineUpdate)
	app.Post("/admin/machines/:id/actions", staffOnly, staffOperate, s.webAdminMachineAction)
	app.Post("/admin/machines/:id/delete", staffOnly, staffAdmin, s.webAdminMachineDelete)
	app.Get("/admin/boot-subnets", staffOnly, s.webAdminBootSubnetList)
	app.Post("/admin/boot-subnets", staffOnly, staffAdmin, s.webAdminBootSubnetCreate)
	app.Get("/admin/boot-subnets/:id", staffOnly, s.webAdminBootSubnet)
	app.Post("/admin/boot-subnets/:id/delete", staffOnly, staffAdmin, s.webAdminBootSubnetDelete)
	app.Post("/admin/boot-subnets/:id/reservations", staffOnly, staffAdmin, s.webAdminReservationCreate)
	app.Post("/admin/boot-subnets/:id/reservations/:mac/delete", staffOnly, staffAdmin, s.webAdminReservationDelete)
	app.Get("/admin/audit", staffOnly, s.webAdminAudit)
	app.Get("/admin/billing", staffOnly, s.webAdminBilling)
	app.Post("/admin/tenants/:id/payments", staffOnly, staffOperate, s.webAdminTenantPayment)
	app.Post("/admin/tenants/:id/credit-limit", staffOnly, staffOperate, s.webAdminTenantCreditLimit)
	app.Post("/admin/billing/settings", staffOnly, staffAdmin, s.webAdminBillingSettings)
	app.Post("/admin/billing/prices", staffOnly, staffAdmin, s.webAdminPriceCreate)
	app.Post("/admin/billing/issue", staffOnly, staffOperate, s.webAdminInvoiceIssue)
	app.Get("/admin/billing/invoices/:id", staffOnly, s.webInvoice)
	app.Post("/admin/billing/invoices/:id/credit-notes", staffOnly, staffAdmin, s.webAdminCreditNote)

	// JSON API: bearer tokens only (a session JWT from /auth/login or an
	// API token), so no CSRF.
	api := apiPrefix
	app.Get(api+"/openapi.json", s.apiOpenAPI)
	app.Post(api+"/auth/signup", s.apiSignup)
	app.Post(api+"/auth/signup/confirm", s.apiSignupConfirm)
	app.Post(api+"/auth/login", s.apiLogin)
	app.Post(api+"/auth/logout", signedIn, s.apiLogout)
	app.Get(api+"/auth/sessions", signedIn, s.apiSessionList)
	app.Post(api+"/auth/sign-out-everywhere", signedIn, s.apiSignOutEverywhere)
	app.Post(api+"/auth/two-factor/setup", signedIn, sessionOnly, s.apiTwoFactorSetup)
	app.Post(api+"/auth/two-factor/enable", signedIn, sessionOnly, s.apiTwoFactorEnable)
	app.Post(api+"/auth/two-factor/recovery-codes", signedIn, sessionOnly, s.apiRecoveryCodes)
	app.Post(api+"/auth/two-factor/disable", signedIn, sessionOnly, s.apiTwoFactorDisable)
	app.Get(api+"/account", signedIn, s.apiAccount)
	app.Get(api+"/quota", tenantOnly, s.apiQuota)
	app.Get(api+"/ssh-keys", tenantOnly, s.apiSSHKeyList)
	app.Post(api+"/ssh-keys", tenantOnly, tenantWrite, s.apiSSHKeyCreate)
	app.Get(api+"/ssh-keys/:id", tenantOnly, s.apiSSHKeyGet)
	app.Delete(api+"/ssh-keys/:id", tenantOnly, tenantWrite, s.apiSSHKeyDelete)
	app.Get(api+"/plans", signedIn, s.apiPlanList)
	app.Get(api+"/images", signedIn, s.apiImageList)
	app.Get(api+"/vms", tenantOnly, s.apiVMList)
	app.Post(api+"/vms", tenantOnly, tenantWrite, s.apiVMCreate)
	app.Get(api+"/vms/:id", tenantOnly, s.apiVMGet)
	app.Patch(api+"/vms/:id", tenantOnly, tenantWrite, s.apiVMUpdate)
	app.Delete(api+"/vms/:id", tenantOnly, tenantWrite, s.apiVMDelete)
	app.Post(api+"/vms/:id/actions", tenantOnly, tenantWrite, s.apiVMAction)
	app.Get(api+"/forwards", tenantOnly, s.apiForwardList)
	app.Post(api+"/forwards", tenantOnly, tenantWrite, s.apiForwardCreate)
	app.Delete(api+"/forwards/:id", tenantOnly, tenantWrite, s.apiForwardDelete)
	app.Get(api+"/dns/records", tenantOnly, s.apiDNSRecordList)
	app.Post(api+"/dns/records", tenantOnly, tenantWrite, s.apiDNSRecordCreate)
	app.Delete(api+"/dns/records/:id", tenantOnly, tenantWrite, s.apiDNSRecordDelete)
	app.Get(api+"/audit", tenantOnly, s.apiAudit)
	app.Get(api+"/billing/usage", tenantOnly, ownerRead, s.apiBillingUsage)
	app.Get(api+"/billing/invoices", tenantOnly, ownerRead, s.apiInvoiceList)
	app.Get(api+"/billing/invoices/:id", tenantOnly, ownerRead, s.apiInvoiceGet)

	app.Get(api+"/admin/plans", staffOnly, s.apiAdminPlanList)
	app.Post(api+"/admin/plans", staffOnly, staffAdmin, s.apiAdminPlanCreate)
	app.Put(api+"/admin/plans/:id", staffOnly, staffAdmin, s.apiAdminPlanUpdate)
	app.Get(api+"/admin/images", staffOnly, s.apiAdminImageList)
	app.Post(api+"/admin/images", staffOnly, staffAdmin, s.apiAdminImageCreate)
	app.Put(api+"/admin/images/:id", staffOnly, staffAdmin, s.apiAdminImageUpdate)
	app.Get(api+"/admin/tenants", staffOnly, s.apiAdminTenantList)
	app.Get(api+"/admin/tenants/:id", staffOnly, s.apiAdminTenantGet)
	app.Put(api+"/admin/tenants/:id/quota", staffOnly, staffOperate, s.apiAdminTenantQuota)
	app.Post(api+"/admin/tenants/:id/suspend", staffOnly, staffOperate, s.apiAdminTenantSuspend)
	app.Post(api+"/admin/tenants/:id/unsuspend", staffOnly, staffOperate, s.apiAdminTenantUnsuspend)
	app.Get(api+"/admin/tenants/:id/billing", staffOnly, s.apiAdminTenantBilling)
	app.Post(api+"/admin/tenants/:id/payments", staffOnly, staffOperate, s.apiAdminPaymentCreate)
	app.Put(api+"/admin/tenants/:id/credit-limit", staffOnly, staffOperate, s.apiAdminTenantCreditLimit)
	app.Get(api+"/admin/billing/settings", staffOnly, s.apiAdminBillingSettings)
	app.Put(api+"/admin/billing/settings", staffOnly, staffAdmin, s.apiAdminBillingSettingsUpdate)
	app.Get(api+"/admin/billing/prices", staffOnly, s.apiAdminPriceList)
	app.Post(api+"/admin/billing/prices", staffOnly, staffAdmin, s.apiAdminPriceCreate)
	app.Get(api+"/admin/billing/invoices", staffOnly, s.apiInvoiceList)
	app.Post(api+"/admin/billing/invoices/issue", staffOnly, staffOperate, s.apiAdminInvoiceIssue)
	app.Get(api+"/admin/billing/invoices/:id", staffOnly, s.apiInvoiceGet)
	app.Post(api+"/admin/billing/invoices/:id/credit-notes", staffOnly, staffAdmin, s.apiAdminCreditNoteCreate)
	app.Get(api+"/admin/billing/export", staffOnly, s.apiAdminInvoiceCSV)
	app.Get(api+"/admin/billing/overdue", staffOnly, s.apiAdminOverdue)
	app.Get(api+"/admin/security", staffOnly, s.apiAdminSecurity)
	app.Put(api+"/admin/security", staffOnly, staffAdmin, s.apiAdminSecurityUpdate)
	app.Get(api+"/admin/quota-defaults", staffOnly, s.apiAdminQuotaDefaults)
	app.Put(api+"/admin/quota-defaults", staffOnly, staffAdmin, s.apiAdminQuotaDefaultsUpdate)
	app.Get(api+"/admin/users", staffOnly, s.apiAdminUserList)
	app.Post(api+"/admin/users", staffOnly, staffAdmin, s.apiAdminUserCreate)
	app.Get(api+"/admin/vms", staffOnly, s.apiAdminVMList)
	app.Post(api+"/admin/vms/:id/retry", staffOnly, staffOperate, s.apiAdminVMRetry)
	app.Get(api+"/admin/hosts", staffOnly, s.apiAdminHostList)
	app.Post(api+"/admin/hosts", staffOnly, staffAdmin, s.apiAdminHostCreate)
	app.Get(api+"/admin/hosts/:id", staffOnly, s.apiAdminHostGet)
	app.Patch(api+"/admin/hosts/:id", staffOnly, staffAdmin, s.apiAdminHostUpdate)
	app.Delete(api+"/admin/hosts/:id", staffOnly, staffAdmin, s.apiAdminHostDelete)
	app.Get(api+"/admin/subnets", staffOnly, s.apiAdminSubnetList)
	app.Post(api+"/admin/subnets", staffOnly, staffAdmin, s.apiAdminSubnetCreate)
	app.Delete(api+"/admin/subnets/:id", staffOnly, staffAdmin, s.apiAdminSubnetDelete)
	app.Get(api+"/admin/machines", staffOnly, s.apiAdminMachineList)
	app.Post(api+"/admin/machines", staffOnly, staffAdmin, s.apiAdminMachineCreate)
	app.Get(api+"/admin/machines/:id", staffOnly, s.apiAdminMachineGet)
	app.Patch(api+"/admin/machines/:id", staffOnly, staffAdmin, s.apiAdminMachineUpdate)
	app.Delete(api+"/admin/machines/:id", staffOnly, staffAdmin, s.apiAdminMachineDelete)
	app.Post(api+"/admin/machines/:id/actions", staffOnly, staffOperate, s.apiAdminMachineAction)
	app.Get(api+"/admin/discovered", staffOnly, s.apiAdminMachineDiscovered)
	app.Post(api+"/admin/discovered/:id/enlist", staffOnly, staffAdmin, s.apiAdminMachineEnlistDiscovered)
	app.Get(api+"/admin/boot-subnets", staffOnly, s.apiAdminBootSubnetList)
	app.Post(api+"/admin/boot-subnets", staffOnly, staffAdmin, s.apiAdminBootSubnetCreate)
	app.Get(api+"/admin/boot-subnets/:id", staffOnly, s.apiAdminBootSubnetGet)
	app.Delete(api+"/admin/boot-subnets/:id", staffOnly, staffAdmin, s.apiAdminBootSubnetDelete)
	app.Get(api+"/admin/boot-subnets/:id/reservations", staffOnly, s.apiAdminBootSubnetReservationList)
	app.Post(api+"/admin/boot-subnets/:id/reservations", staffOnly, staffAdmin, s.apiAdminBootSubnetReservationCreate)
	app.Delete(api+"/admin/boot-subnets/:id/reservations/:mac", staffOnly, staffAdmin, s.apiAdminBootSubnetReservationDelete)
	app.Get(api+"/admin/boot-subnets/:id/leases", staffOnly, s.apiAdminBootSubnetLeases)
	app.Get(api+"/admin/audit", staffOnly, s.apiAdminAudit)
	app.Get(api+"/admin/deploy-ssh-keys", staffOnly, s.apiAdminDeployKeysGet)
	app.Put(api+"/admin/deploy-ssh-keys", staffOnly, staffAdmin, s.apiAdminDeployKeysPut)

	// The boot environment's agent has no account: the one-time token in
	// its report authenticates it.
	app.Post("/api/agent/v1/report", s.apiAgentReport)
	app.Get("/api/agent/v1/deploy", s.apiAgentDeploy)

	app.Use(func(c *fiber.Ctx) error { return errNotFound("page") })
	return app
}
