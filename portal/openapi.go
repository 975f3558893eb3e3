package portal

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// The OpenAPI 3.0.3 description of /api/v1, built in Go so that it changes
// together with the handlers; openapi_test.go checks both agree.

type oaObj = map[string]any

func (s *Server) apiOpenAPI(c *fiber.Ctx) error {
	return c.JSON(openAPIDocument(s.cfg.Version))
}

func oaString() oaObj   { return oaObj{"type": "string"} }
func oaInt() oaObj      { return oaObj{"type": "integer", "format": "int64"} }
func oaBool() oaObj     { return oaObj{"type": "boolean"} }
func oaTime() oaObj     { return oaObj{"type": "string", "format": "date-time"} }
func oaTimeNull() oaObj { return oaObj{"type": "string", "format": "date-time", "nullable": true} }
func oaRef(name string) oaObj {
	return oaObj{"$ref": "#/components/schemas/" + name}
}
func oaRatio(desc string) oaObj { return oaObj{"type": "number", "description": desc} }
func oaArray(items oaObj) oaObj { return oaObj{"type": "array", "items": items} }
func oaEnum(values ...string) oaObj {
	return oaObj{"type": "string", "enum": values}
}

// oaObject is an object schema; every property is required unless listed
// in optional.
func oaObject(props oaObj, optional ...string) oaObj {
	req := []string{}
	for k := range props {
		if !slices.Contains(optional, k) {
			req = append(req, k)
		}
	}
	slices.Sort(req)
	o := oaObj{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		o["required"] = req
	}
	return o
}

func oaMerge(a, b oaObj) oaObj {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func oaList(item string) oaObj {
	return oaObject(oaObj{"items": oaArray(oaRef(item)), "page": oaInt(), "per_page": oaInt(), "total": oaInt()})
}

func oaItems(item string) oaObj {
	return oaObject(oaObj{"items": oaArray(oaRef(item))})
}

func oaJSON(schema oaObj) oaObj {
	return oaObj{"application/json": oaObj{"schema": schema}}
}

// oaOp describes one operation.
type oaOp struct {
	summary  string
	tag      string
	public   bool
	body     string // request schema name
	status   int
	response oaObj // nil: no body
	errors   []int
	params   []oaObj
	// also is a second success answer: its status, description and body.
	also *oaAlt
	// media is the success answer's type when it is not JSON (CSV, PDF).
	media string
	// description says more of the success answer than "Success.".
	description string
}

type oaAlt struct {
	status      int
	description string
	response    oaObj
}

func errorText(status int) string {
	switch status {
	case 400:
		return "Malformed request: bad JSON, unknown field or bad query parameter."
	case 401:
		return "Not authenticated."
	case 403:
		return "The role or token scope does not allow this, or the tenant is suspended."
	case 404:
		return "Not found (also another tenant's id, and admin routes for customers)."
	case 402:
		return "The change could take the balance below the credit limit."
	case 409:
		return "Conflict: duplicate, or not possible in the current state."
	case 415:
		return "The body is not application/json."
	case 422:
		return "Invalid value or quota exceeded; error.field names the input."
	case 429:
		return "Too many attempts."
	case 426:
		return "The request was not a WebSocket upgrade."
	case 502:
		return "The VM's host did not answer."
	case 503:
		return "Not served by this process (the console needs the provisioner role), or the database is unreachable."
	}
	return "Refused."
}

func (o oaOp) build() oaObj {
	op := oaObj{"summary": o.summary, "tags": []string{o.tag}}
	if o.public {
		op["security"] = []oaObj{}
	}
	if len(o.params) > 0 {
		op["parameters"] = o.params
	}
	if o.body != "" {
		op["requestBody"] = oaObj{"required": true, "content": oaJSON(oaRef(o.body))}
	}
	res := oaObj{}
	ok := oaObj{"description": "Success."}
	if o.description != "" {
		ok["description"] = o.description
	}
	if o.response != nil {
		ok["content"] = oaJSON(o.response)
	}
	if o.media != "" {
		ok["content"] = oaObj{o.media: oaObj{"schema": oaObj{"type": "string", "format": "binary"}}}
	}
	res[strconv.Itoa(o.status)] = ok
	if o.also != nil {
		res[strconv.Itoa(o.also.status)] = oaObj{"description": o.also.description, "content": oaJSON(o.also.response)}
	}
	errs := o.errors
	if !o.public {
		errs = append([]int{401}, errs...)
	}
	if o.body != "" {
		errs = append(errs, 400, 415, 422)
	}
	for _, code := range errs {
		res[strconv.Itoa(code)] = oaObj{"description": errorText(code), "content": oaJSON(oaRef("Error"))}
	}
	op["responses"] = res
	return op
}

func oaQuery(name, desc string, schema oaObj) oaObj {
	return oaObj{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
}

func oaPaging(extra ...oaObj) []oaObj {
	return append([]oaObj{
		oaQuery("page", "Page number, from 1.", oaObj{"type": "integer", "minimum": 1, "default": 1}),
		oaQuery("per_page", "Items per page.", oaObj{"type": "integer", "minimum": 1, "maximum": 100, "default": 25}),
	}, extra...)
}

func openAPIDocument(version string) oaObj {
	if version == "" {
		version = "dev"
	}
	quota := oaObject(oaObj{"instances": oaInt(), "vcpus": oaInt(), "memory_mib": oaInt(), "disk_gib": oaInt(), "ssh_keys": oaInt(), "port_forwards": oaInt(),
		"snapshots": oaInt(), "snapshot_gib": oaInt()}, "snapshots", "snapshot_gib")
	ref := oaObject(oaObj{"id": oaString(), "name": oaString()})
	vm := oaObj{
		"id": oaString(), "name": oaString(), "state": oaString(), "desired_state": oaString(),
		"plan": ref, "image": ref, "vcpus": oaInt(), "memory_mib": oaInt(), "disk_gib": oaInt(),
		"ip": oaString(), "dns_name": oaString(), "ssh_keys": oaArray(oaString()), "user_data_bytes": oaInt(),
		"source_snapshot_id": oaObj{"type": "string", "description": "the snapshot the VM's disk was copied from when it was made; empty for a VM made from an image"},
		"last_error":         oaString(), "created_by": oaString(), "created_at": oaTime(), "updated_at": oaTime(),
	}
	user := oaObj{"id": oaString(), "email": oaString(), "role": oaString(), "staff": oaBool(), "created_at": oaTime(), "last_login_at": oaTimeNull(), "two_factor": oaBool()}
	tenant := oaObj{
		"id": oaString(), "name": oaString(), "slug": oaString(), "status": oaEnum("active", "suspended"),
		"suspend_reason": oaString(), "owner_email": oaString(), "vm_count": oaInt(), "quota": oaRef("Quota"), "created_at": oaTime(),
	}
	plan := oaObj{"name": oaString(), "vcpus": oaInt(), "memory_mib": oaInt(), "disk_gib": oaInt(), "enabled": oaBool()}
	figure := oaObject(oaObj{"physical": oaInt(), "overcommitted": oaObj{"type": "integer", "format": "int64", "description": "floor(physical × ratio)"},
		"reserved": oaInt(), "allocated": oaInt(), "free": oaObj{"type": "integer", "format": "int64", "description": "overcommitted − reserved − allocated; negative after a ratio was lowered below what is placed"},
		"ratio": oaObj{"type": "number"}})
	host := oaObj{
		"id": oaString(), "name": oaString(), "uri": oaString(), "state": oaEnum("new", "ready", "error"), "last_error": oaString(),
		"enabled": oaBool(), "maintenance": oaBool(),
		"ratios":       oaObject(oaObj{"cpu": oaObj{"type": "number"}, "memory": oaObj{"type": "number"}, "disk": oaObj{"type": "number"}}),
		"reserved":     oaObject(oaObj{"cores": oaInt(), "memory_mib": oaInt(), "disk_gib": oaInt()}),
		"storage_pool": oaString(), "bridge": oaString(), "cpu_model": oaString(),
		"ssh_host_key_fingerprint": oaObj{"type": "string", "description": "SHA256 fingerprint of the pinned SSH host key; empty until discovery"},
		"refreshed_at":             oaTimeNull(), "vm_count": oaInt(),
		"capacity": oaObject(oaObj{"cpu": oaRef("Figure"), "memory": oaRef("Figure"), "disk": oaRef("Figure")}),
	}
	subnet := oaObj{"name": oaString(), "cidr": oaObj{"type": "string", "description": "IPv4 network, e.g. 192.0.2.0/24"},
		"gateway": oaString(), "dns_servers": oaArray(oaString()), "range_start": oaString(), "range_end": oaString()}
	image := oaObj{"name": oaString(), "os": oaString(), "version": oaString(), "source_url": oaString(), "checksum": oaString(), "enabled": oaBool(),
		"kind":       oaObj{"type": "string", "enum": []string{"vm", "machine"}, "description": "vm: a qcow2 disk for VMs (default); machine: a raw or gzip-compressed raw disk with a boot loader, at an http(s) address machines can reach"},
		"kernel_url": oaString(), "kernel_checksum": oaString(), "initrd_url": oaString(), "initrd_checksum": oaString()}
	bootFields := []string{"kind", "kernel_url", "kernel_checksum", "initrd_url", "initrd_checksum"}

	machineStates := []string{"new", "commissioning", "ready", "deploying", "deployed", "releasing", "failed_commissioning", "failed_deployment", "broken", "rescue"}
	machine := oaObj{
		"id": oaString(), "name": oaString(), "state": oaEnum(machineStates...), "state_changed_at": oaTime(), "last_error": oaString(),
		"macs": oaArray(oaString()),
		"power": oaObject(oaObj{"type": oaEnum("ipmi", "wol", "virsh", "manual"), "params": oaObj{"type": "object", "additionalProperties": oaString(),
			"description": "driver parameters; never the password"}, "has_password": oaBool(), "state": oaString()}),
		"cpu_model": oaString(), "cores": oaInt(), "memory_mib": oaInt(),
		"actions":    oaObj{"type": "array", "items": oaString(), "description": "actions allowed in the current state"},
		"created_at": oaTime(),
	}
	machinePowerIn := oaObj{"type": "object", "required": []string{"type"}, "additionalProperties": oaString(),
		"description": "{type: ipmi|wol|virsh|manual, password?, …driver parameters (ipmi: address, port, username, interface, cipher_suite, timeout, boot_mode: bios (the default) or uefi, how the machine is set to boot from the network; wol: mac, broadcast; virsh: domain, uri, timeout)}; the password is stored encrypted and never returned",
		"properties":  oaObj{"type": oaEnum("ipmi", "wol", "virsh", "manual"), "password": oaObj{"type": "string", "writeOnly": true}}}

	bootSubnet := oaObj{"name": oaString(), "cidr": oaObj{"type": "string", "description": "IPv4 network, /30 or larger, e.g. 10.213.0.0/24; may not overlap another boot subnet"},
		"gateway": oaString(), "dns_servers": oaArray(oaString()),
		"range_start":   oaObj{"type": "string", "description": "first address of the dynamic range for machines not yet enlisted; empty with range_end: reservations only"},
		"range_end":     oaObj{"type": "string", "description": "last address of the dynamic range"},
		"lease_seconds": oaObj{"type": "integer", "format": "int64", "minimum": 60, "maximum": 604800, "description": "lease time; 0 or absent: 3600"}}
	bootSubnetFigures := oaObj{"id": oaString(), "size": oaObj{"type": "integer", "format": "int64", "description": "addresses in the dynamic range"},
		"used": oaObj{"type": "integer", "format": "int64", "description": "addresses of the dynamic range with a lease that has not run out"},
		"free": oaInt(), "reservation_count": oaInt(), "created_at": oaTime()}
	reservation := oaObj{"mac": oaString(), "ip": oaObj{"type": "string", "description": "a host address of the subnet outside its dynamic range"},
		"hostname": oaObj{"type": "string", "description": "one DNS label, sent to the machine"}}

	schemas := oaObj{
		"Error": oaObject(oaObj{"error": oaObject(oaObj{
			"code": oaString(), "message": oaString(), "field": oaString(), "request_id": oaString(),
		}, "field", "request_id")}),
		"Signup": oaObject(oaObj{"tenant": oaString(), "email": oaString(), "password": oaString()}),
		"Login": oaObject(oaObj{"email": oaString(), "password": oaString(),
			"code": oaObj{"type": "string", "description": "The authenticator or a recovery code, for a user with two-factor sign-in."}}, "code"),
		"TwoFactorSetup":   oaObject(oaObj{"secret": oaString(), "otpauth_url": oaString()}),
		"TwoFactorCode":    oaObject(oaObj{"code": oaString()}),
		"TwoFactorDisable": oaObject(oaObj{"password": oaString(), "code": oaString()}),
		"RecoveryCodes":    oaObject(oaObj{"recovery_codes": oaArray(oaString())}),
		"SignupSent":       oaObject(oaObj{"status": oaString(), "message": oaString()}),
		"SignupConfirm":    oaObject(oaObj{"token": oaString()}),
		"Session":          oaObject(oaObj{"token": oaString(), "expires_at": oaTime()}),
		"SessionInfo": oaObject(oaObj{"id": oaString(), "kind": oaEnum("web", "api"), "ip": oaString(), "user_agent": oaString(),
			"created_at": oaTime(), "last_seen_at": oaTime(), "expires_at": oaTime(), "current": oaBool()}),
		"SessionList": oaObject(oaObj{"sessions": oaArray(oaRef("SessionInfo"))}),
		"SignOut":     oaObject(oaObj{"ended": oaInt()}),
		"User":        oaObject(user),
		"Tenant": oaObject(oaObj{"id": oaString(), "name": oaString(), "slug": oaString(), "status": oaString(),
			"suspend_reason": oaString(), "created_at": oaTime()}, "suspend_reason"),
		"Account": oaObject(oaObj{"user": oaRef("User"), "tenant": oaObj{"allOf": []oaObj{oaRef("Tenant")}, "nullable": true},
			"scope": oaEnum("read", "write")}),
		"Quota":      quota,
		"QuotaUsage": oaObject(oaObj{"limits": oaRef("Quota"), "used": oaRef("Quota")}),
		"SSHKey": oaObject(oaObj{"id": oaString(), "name": oaString(), "type": oaString(), "bits": oaInt(),
			"fingerprint": oaString(), "public_key": oaString(), "comment": oaString(), "created_by": oaString(), "created_at": oaTime()}),
		"SSHKeyCreate": oaObject(oaObj{"name": oaString(), "public_key": oaObj{"type": "string", "description": "OpenSSH authorized_keys line"}}, "name"),
		"Plan": oaObject(oaObj{"id": oaString(), "name": oaString(), "vcpus": oaInt(), "memory_mib": oaInt(), "disk_gib": oaInt(),
			"fits": oaBool(), "reason": oaObj{"type": "string", "description": "why the plan does not fit the quota; absent when it fits"},
			"price": oaObj{"allOf": []oaObj{oaRef("Price")}, "nullable": true, "description": "the current price; null when the plan has none"}}, "reason"),
		"Price": oaObject(oaObj{"currency": oaString(), "hourly": oaObj{"type": "string", "description": "per started hour, e.g. 0.006"},
			"monthly_cap":        oaObj{"type": "string", "description": "at most this a month, e.g. 4.00; empty when uncapped"},
			"bills_when_stopped": oaBool(), "effective_from": oaTime()}),
		"AdminPrice": oaObject(oaObj{"id": oaString(), "item": oaString(), "currency": oaString(), "hourly": oaString(), "monthly_cap": oaString(),
			"bills_when_stopped": oaBool(), "effective_from": oaTime()}),
		"PriceCreate": oaObject(oaObj{"item": oaString(), "hourly": oaString(), "monthly_cap": oaString(), "bills_when_stopped": oaBool(),
			"effective_from": oaTime()}, "monthly_cap", "bills_when_stopped", "effective_from"),
		"BillingSettings": oaObject(oaObj{"currency": oaString(), "vat_rate": oaString(), "default_credit_limit": oaObj{"type": "string", "nullable": true},
			"next_invoice_number": oaInt(), "invoice_prefix": oaString()}),
		"BillingSettingsUpdate": oaObject(oaObj{"currency": oaString(), "vat_rate": oaString()}),
		"Balance": oaObject(oaObj{"balance": oaString(), "paid": oaString(), "credited": oaString(), "invoiced": oaString(), "unbilled": oaString(),
			"credit_limit": oaObj{"type": "string", "nullable": true}, "overdue": oaBool()}),
		"UsageLine": oaObject(oaObj{"resource_kind": oaEnum(store.ResourceVM, store.ResourcePortForward, store.ResourceSnapshot), "resource_id": oaString(),
			"resource_name": oaString(), "units": oaInt(), "hours": oaInt(), "amount": oaString()}),
		"Usage": oaObject(oaObj{"month": oaString(), "currency": oaString(), "metered_until": oaTimeNull(), "lines": oaArray(oaRef("UsageLine")),
			"subtotal": oaString(), "forecast": oaString(), "vat_rate": oaString(), "balance": oaRef("Balance")}),
		"InvoiceLine": oaObject(oaObj{"description": oaString(), "hours": oaInt(), "unit_price": oaString(), "amount": oaString()}),
		"Invoice": oaObject(oaObj{"id": oaString(), "number": oaString(), "kind": oaEnum(store.InvoiceKind, store.CreditNoteKind),
			"tenant_id": oaString(), "tenant_name": oaString(), "month": oaString(), "currency": oaString(), "subtotal": oaString(),
			"vat_rate": oaString(), "vat": oaString(), "total": oaString(), "credits_invoice_id": oaString(), "reason": oaString(),
			"issued_at": oaTime(), "lines": oaArray(oaRef("InvoiceLine"))}, "credits_invoice_id", "reason", "lines"),
		"InvoiceIssue":       oaObject(oaObj{"month": oaString(), "tenant_id": oaString()}, "tenant_id"),
		"InvoiceIssueReport": oaObject(oaObj{"month": oaString(), "issued": oaInt(), "already_invoiced": oaInt(), "nothing_to_bill": oaInt(), "total": oaString()}),
		"CreditNoteCreate":   oaObject(oaObj{"amount": oaString(), "reason": oaString()}),
		"PaymentCreate":      oaObject(oaObj{"kind": oaEnum(store.PaymentKind, store.CreditKind), "amount": oaString(), "reference": oaString(), "note": oaString()}, "reference", "note"),
		"Payment": oaObject(oaObj{"id": oaString(), "kind": oaString(), "amount": oaString(), "reference": oaString(), "note": oaString(),
			"recorded_by": oaString(), "recorded_at": oaTime()}),
		"TenantBilling": oaObject(oaObj{"balance": oaRef("Balance"), "payments": oaArray(oaRef("Payment"))}),
		"CreditLimit":   oaObject(oaObj{"credit_limit": oaObj{"type": "string", "nullable": true}}),
		"Overdue":       oaObject(oaObj{"tenant_id": oaString(), "name": oaString(), "balance": oaRef("Balance")}),
		"Image":         oaObject(oaObj{"id": oaString(), "name": oaString(), "os": oaString(), "version": oaString()}),
		"VM":            oaObject(vm),
		"VMDetail": oaObject(oaMerge(vm, oaObj{
			"timeline": oaArray(oaRef("Step")), "operations": oaArray(oaRef("Operation")),
		})),
		"VMCreate": oaObject(oaObj{"name": oaString(), "plan": oaObj{"type": "string", "description": "plan id or name"},
			"image": oaObj{"type": "string", "description": "image id or name; give this or snapshot, not both (422 on field snapshot for both, on image for neither)"},
			"snapshot": oaObj{"type": "string", "description": "instead of image: the id of one of your ready snapshots (of any of your VMs). " +
				"The new VM's disk is a copy of the snapshot, grown to the plan's disk, which must be at least the snapshot's VM's disk; " +
				"it is made on the snapshot's host, so a refusal (422) names what that host lacks. It records the snapshot's VM's image, " +
				"which a rebuild installs. Another organisation's or an unknown snapshot is refused with 422 \"no such snapshot\""},
			"ssh_keys":  oaArray(oaString()),
			"user_data": oaObj{"type": "string", "maxLength": 16384}}, "user_data", "image", "snapshot"),
		"VMAction": oaObject(oaObj{"type": oaEnum("start", "stop", "reboot", "rebuild", "resize", "delete"),
			"plan": oaObj{"type": "string", "description": "resize only, and required there: the plan (id or name) to change to. " +
				"vCPUs and memory may grow or shrink, the disk only grows; what grows must fit in the quota and on the VM's own host " +
				"under its overcommit ratios, and a refusal (422) names the binding limit. The VM is shut down, resized and started again"},
			"image": oaObj{"type": "string", "description": "rebuild only: the image (id or name) to install; default the VM's own. " +
				"Name, plan and address stay"}}, "plan", "image"),
		"Step": oaObject(oaObj{"step": oaString(), "state": oaString(), "message": oaString(),
			"started_at": oaTime(), "finished_at": oaTimeNull()}),
		"Snapshot": oaObject(oaObj{"id": oaString(), "vm_id": oaString(), "name": oaString(),
			"state":       oaEnum(store.SnapshotCreating, store.SnapshotReady, store.SnapshotRestoring, store.SnapshotDeleting, store.SnapshotError),
			"size_bytes":  oaObj{"type": "integer", "format": "int64", "description": "bytes the snapshot takes on its host; 0 until ready"},
			"quota_gib":   oaObj{"type": "integer", "format": "int64", "description": "GiB counted against the snapshot quota: the VM's disk size while being taken, then the real size rounded up"},
			"consistency": oaObj{"type": "string", "description": "how the guest was when its disk was copied: frozen (running, file systems frozen by the guest agent), crash-consistent (running, no agent answered: as after a power cut) or stopped (shut down, or shut down for the copy on a host that cannot copy a running disk); empty until ready"},
			"message":     oaString(), "created_at": oaTime(), "ready_at": oaTimeNull()}),
		"SnapshotCreate": oaObject(oaObj{"name": oaObj{"type": "string", "description": "1-63 letters, digits, dots, dashes or underscores, unique among the VM's snapshots"}}),
		"SnapshotTaken":  oaObject(oaObj{"snapshot": oaRef("Snapshot"), "operation": oaRef("Operation")}),
		"Operation": oaObject(oaObj{"id": oaString(), "type": oaString(), "state": oaString(), "message": oaString(),
			"requested_by": oaString(), "created_at": oaTime(), "started_at": oaTimeNull(), "finished_at": oaTimeNull()}),
		"VMPasswordReset": oaObject(oaObj{"password": oaObj{"type": "string", "description": "the new console password of the image's " +
			"default user (debian on Debian images); in this answer only, never stored in clear"}, "operation": oaRef("Operation")}),
		"AuditEntry": oaObject(oaObj{"id": oaString(), "at": oaTime(), "actor_email": oaString(), "tenant_id": oaString(),
			"action": oaString(), "target_type": oaString(), "target_id": oaString(), "target_name": oaString(),
			"source_ip": oaString(), "result": oaEnum("success", "failure"), "detail": oaString()}),
		"AdminPlan":        oaObject(oaMerge(plan, oaObj{"id": oaString(), "vm_count": oaInt()})),
		"AdminPlanCreate":  oaObject(plan, "enabled"),
		"AdminPlanUpdate":  oaObject(plan),
		"AdminImage":       oaObject(oaMerge(image, oaObj{"id": oaString()})),
		"AdminImageCreate": oaObject(image, append([]string{"enabled"}, bootFields...)...),
		"AdminImageUpdate": oaObject(image, bootFields...),
		"AdminTenant":      oaObject(tenant),
		"AdminTenantDetail": oaObject(oaMerge(tenant, oaObj{
			"used": oaRef("Quota"), "members": oaArray(oaRef("User")),
		})),
		"Suspend":           oaObject(oaObj{"reason": oaString()}),
		"Security":          oaObject(oaObj{"staff_two_factor_required": oaBool()}),
		"PasswordForgot":    oaObject(oaObj{"email": oaString()}),
		"PasswordReset":     oaObject(oaObj{"token": oaString(), "password": oaObj{"type": "string", "minLength": 10}}),
		"PasswordResetLink": oaObject(oaObj{"user_id": oaString(), "email": oaString(), "url": oaString(), "expires_at": oaTime()}),
		"PasswordResetRequest": oaObject(oaObj{"user_id": oaString(), "email": oaString(), "tenant_name": oaString(),
			"source_ip": oaString(), "created_at": oaTime()}),
		"AdminUser":   oaObject(oaMerge(user, oaObj{"tenant_id": oaString(), "tenant_name": oaString()})),
		"StaffCreate": oaObject(oaObj{"email": oaString(), "password": oaObj{"type": "string", "minLength": 10}, "role": oaEnum("admin", "operator", "auditor")}),
		"AdminVM": oaObject(oaMerge(vm, oaObj{"tenant_id": oaString(), "tenant_name": oaString(),
			"host": oaObj{"allOf": []oaObj{oaRef("Ref")}, "nullable": true, "description": "the host the VM is placed on; null until placed"}})),
		"Ref":    ref,
		"Figure": figure,
		"Host":   oaObject(host),
		"HostCreate": oaObject(oaObj{"name": oaString(), "uri": oaObj{"type": "string", "description": "libvirt URI: test:///default, qemu:///system or qemu+ssh://user@host/system"},
			"cpu_ratio": oaRatio("CPU overcommit, 1.0–16.0; default 4.0"), "memory_ratio": oaRatio("memory overcommit, 0.5–4.0; default 1.0"),
			"disk_ratio": oaRatio("disk overcommit, 0.5–10.0; default 1.0"), "reserved_cores": oaInt(), "reserved_memory_mib": oaInt(),
			"reserved_disk_gib": oaInt(), "storage_pool": oaString(), "bridge": oaString()},
			"cpu_ratio", "memory_ratio", "disk_ratio", "reserved_cores", "reserved_memory_mib", "reserved_disk_gib", "storage_pool", "bridge"),
		"HostUpdate": oaObject(oaObj{"cpu_ratio": oaRatio("CPU overcommit"), "memory_ratio": oaRatio("memory overcommit"), "disk_ratio": oaRatio("disk overcommit"),
			"reserved_cores": oaInt(), "reserved_memory_mib": oaInt(), "reserved_disk_gib": oaInt(), "maintenance": oaBool(), "enabled": oaBool()},
			"cpu_ratio", "memory_ratio", "disk_ratio", "reserved_cores", "reserved_memory_mib", "reserved_disk_gib", "maintenance", "enabled"),
		"Subnet":       oaObject(oaMerge(subnet, oaObj{"id": oaString(), "size": oaInt(), "used": oaInt(), "free": oaInt(), "created_at": oaTime()})),
		"SubnetCreate": oaObject(subnet, "gateway", "dns_servers"),
		"Machine":      oaObject(machine),
		"MachineDetail": oaObject(oaMerge(machine, oaObj{"deploy_image_id": oaString(), "deploy_disk": oaString(),
			"deploy_kvm_host": oaObj{"type": "boolean", "description": "the deploy registers the machine as a KVM host"},
			"ssh_host_key":    oaObj{"type": "string", "description": "the deployed system's SSH host key, generated by the deploy agent"},
			"host_id":         oaObj{"type": "string", "description": "the KVM host the machine became; empty if none"},
			"inventory":       oaObj{"type": "object", "nullable": true, "description": "what commissioning reported: cpu, memory_mib, disks, nics, bmc; null until commissioned"},
			"sensors": oaArray(oaObject(oaObj{"name": oaString(), "type": oaObj{"type": "string", "description": "Temperature, Fan, Voltage, …"},
				"value":  oaObj{"type": "number", "description": "in unit; meaningless for discrete sensors (unit empty)"},
				"unit":   oaObj{"type": "string", "description": "degrees C, RPM, Volts, …; empty for discrete sensors"},
				"status": oaObj{"type": "string", "description": "ok; lnc/unc, lcr/ucr, lnr/unr below or above the non-critical, critical, non-recoverable threshold; N/A without a reading; a discrete sensor's state bits as 0x…"}})),
			"sensors_read_at": oaObj{"type": "string", "format": "date-time", "nullable": true, "description": "when the BMC's sensors were last read (IPMI machines, every power poll); null until read. A failed read keeps the previous readings and time"},
			"events": oaArray(oaObject(oaObj{"at": oaTime(), "kind": oaEnum("enlisted", "transition", "power_requested", "power_done", "power_failed", "power_drift", "disk_erased"), "from": oaString(), "to": oaString(), "message": oaString(),
				"log": oaObj{"type": "string", "description": "for a transition a boot agent's report made: its message and last log lines"}}))})),
		"MachineCreate": oaObject(oaObj{"name": oaString(), "macs": oaArray(oaObj{"type": "string", "description": "MAC address; the first is the boot MAC"}), "power": machinePowerIn}, "power"),
		"MachineUpdate": oaObject(oaObj{"name": oaString(), "macs": oaArray(oaString()), "power": machinePowerIn}, "name", "macs", "power"),
		"MachineAction": oaObject(oaObj{"type": oaEnum("commission", "deploy", "release", "mark_broken", "mark_fixed", "rescue", "exit_rescue", "power_on", "power_off", "power_cycle"),
			"reason": oaObj{"type": "string", "description": "why; required for mark_broken"}, "image": oaObj{"type": "string", "description": "deploy: image id or name"},
			"disk":     oaObj{"type": "string", "description": "deploy: target disk, e.g. sda"},
			"kvm_host": oaObj{"type": "boolean", "description": "deploy: register the deployed machine as a KVM host (the image must run libvirt)"},
			"erase":    oaObj{"type": "boolean", "description": "release: the boot agent quick-wipes every disk (partition tables and filesystem signatures at both ends) before the machine is ready again"}}, "reason", "image", "disk", "kvm_host", "erase"),
		"Discovered": oaObject(oaObj{"mac": oaString(), "subnet_id": oaString(), "vendor_class": oaString(), "arch": oaObj{"type": "integer", "description": "DHCP option 93 client architecture; -1 unknown"},
			"user_class": oaString(), "first_seen": oaTime(), "last_seen": oaTime()}),
		"EnlistDiscovered":  oaObject(oaObj{"name": oaString()}),
		"BootSubnet":        oaObject(oaMerge(bootSubnet, bootSubnetFigures)),
		"BootSubnetDetail":  oaObject(oaMerge(oaMerge(bootSubnet, bootSubnetFigures), oaObj{"reservations": oaArray(oaRef("Reservation"))})),
		"BootSubnetCreate":  oaObject(bootSubnet, "gateway", "dns_servers", "range_start", "range_end", "lease_seconds"),
		"Reservation":       oaObject(oaMerge(reservation, oaObj{"subnet_id": oaString(), "created_at": oaTime()})),
		"ReservationCreate": oaObject(reservation, "hostname"),
		"Lease": oaObject(oaObj{"ip": oaString(), "mac": oaObj{"type": "string", "description": "empty for a declined address"},
			"hostname": oaObj{"type": "string", "description": "from the MAC's reservation, if any"},
			"state":    oaObj{"type": "string", "enum": leaseStates(), "description": "active: held now; expired: ran out, the address may go to another MAC; declined: a client reported the address in use, so it is held by no MAC for one lease time"},
			"reserved": oaObj{"type": "boolean", "description": "the address is the MAC's reservation"}, "expires_at": oaTime(), "created_at": oaTime()}),
		"DeployKeys": oaObject(oaObj{"keys": oaArray(oaObj{"type": "string", "description": "one OpenSSH public key (authorized_keys line)"})}),
		"VMUpdate": oaObject(oaObj{"expose_http": oaObj{"type": "boolean", "description": "publish port 80 by Host header at the VM's DNS name"},
			"expose_https":   oaObj{"type": "boolean", "description": "pass TLS on port 443 through by SNI at the VM's DNS name"},
			"proxy_protocol": oaObj{"type": "boolean", "description": "prefix passed-through TLS connections with a PROXY v2 header"}},
			"expose_http", "expose_https", "proxy_protocol"),
		"VMExposed": oaObject(oaMerge(vm, oaObj{"exposure": oaRef("Exposure")})),
		"Exposure":  oaObject(oaObj{"http": oaBool(), "https": oaBool(), "proxy_protocol": oaBool()}),
		"Forward": oaObject(oaObj{"id": oaString(), "vm": oaRef("Ref"), "public_port": oaInt(), "target_port": oaInt(),
			"protocol": oaEnum("tcp"), "address": oaObj{"type": "string", "description": "public address:port the world connects to"}, "created_at": oaTime()}),
		"ForwardCreate": oaObject(oaObj{"vm": oaObj{"type": "string", "description": "VM id"},
			"public_port": oaObj{"type": "integer", "description": "a port in the ISP's forward range; 0 or absent picks the lowest free one"},
			"target_port": oaObj{"type": "integer", "minimum": 1, "maximum": 65535}}, "public_port"),
		"DNSRecord": oaObject(oaObj{"id": oaString(), "name": oaObj{"type": "string", "description": "relative to the organisation's subzone; @ is the subzone itself"},
			"fqdn": oaString(), "type": oaEnum("A", "AAAA", "CNAME", "TXT", "MX"), "value": oaString(), "ttl": oaInt(), "priority": oaInt(), "created_at": oaTime()}),
		"ReverseDNS": oaObject(oaObj{"vm_id": oaString(),
			"address": oaObj{"type": "string", "description": "the VM's address; empty while it has none"},
			"ptr":     oaObj{"type": "string", "description": "the name the DNS server's PTR record for the address points at (answered to the ISP's network); empty while the VM has no address"},
			"default": oaObj{"type": "boolean", "description": "ptr is the VM's own name, because no other was chosen"}}),
		"VMMetrics": oaObject(oaObj{"vm_id": oaString(), "range": oaEnum("hour", "day", "week"), "from": oaTime(), "to": oaTime(),
			"step_seconds": oaObj{"type": "integer", "description": "what one sample stands for: 0 for raw samples (hour, day; one per sampling interval, by default a minute), 600 for the ten-minute means of the week"},
			"vcpus":        oaInt(),
			"samples": oaArray(oaObject(oaObj{"at": oaTime(),
				"cpu_percent":                 oaObj{"type": "number", "description": "share of the VM's vCPUs in use, 0–100"},
				"memory_used_bytes":           oaObj{"type": "integer", "format": "int64", "description": "memory in use as the guest reports it through the balloon driver; without its statistics, the host memory the VM holds"},
				"memory_available_bytes":      oaObj{"type": "integer", "format": "int64", "description": "memory the guest has"},
				"disk_read_bytes_per_second":  oaObj{"type": "number"},
				"disk_write_bytes_per_second": oaObj{"type": "number"},
				"net_rx_bytes_per_second":     oaObj{"type": "number", "description": "received by the VM"},
				"net_tx_bytes_per_second":     oaObj{"type": "number", "description": "sent by the VM"}}))}),
		"ReverseDNSUpdate": oaObject(oaObj{"ptr": oaObj{"type": "string", "maxLength": 254,
			"description": "a full name in the organisation's subzone that resolves to the VM's address in our DNS (the VM's own name, or a name with an A record for the address), the final dot optional; the empty string returns to the VM's own name"}}),
		"DNSRecordCreate": oaObject(oaObj{"name": oaString(), "type": oaEnum("A", "AAAA", "CNAME", "TXT", "MX"), "value": oaString(),
			"ttl":      oaObj{"type": "integer", "minimum": 60, "maximum": 86400, "description": "seconds; default 3600"},
			"priority": oaObj{"type": "integer", "description": "MX only"}}, "ttl", "priority"),
	}

	audit := []oaObj{
		oaQuery("action", "Action prefix, e.g. vm. or vm.create.", oaString()),
		oaQuery("result", "Only successes or failures.", oaEnum("success", "failure")),
	}
	paths := map[string]map[string]oaOp{
		"/openapi.json": {"get": {summary: "This document", tag: "meta", public: true, status: 200, response: oaObj{"type": "object"}}},
		"/auth/signup": {"post": {summary: "Create an organisation and its owner; returns a session token. When the portal sends email " +
			"(--smtp-url), nothing is created yet: the answer is 202 whether or not the email has an account, and the link sent to it finishes the sign-up",
			tag: "auth", public: true, body: "Signup", status: 201, response: oaRef("Session"), errors: []int{409, 429},
			also: &oaAlt{202, "A confirmation link was sent to the email (or, if it has an account, a notice).", oaRef("SignupSent")}}},
		"/auth/signup/confirm": {"post": {summary: "Finish a sign-up with the token from the emailed link (…/signup/confirm/{token}); returns a session token",
			tag: "auth", public: true, body: "SignupConfirm", status: 201, response: oaRef("Session"), errors: []int{404, 409}}},
		"/auth/login": {"post": {summary: "Exchange email and password for a session token; a user with two-factor sign-in sends the code too " +
			"(without it the answer is 401 two_factor_required)", tag: "auth", public: true,
			body: "Login", status: 200, response: oaRef("Session"), errors: []int{401, 429}}},
		"/auth/password/forgot": {"post": {summary: "Ask for a password reset link: sent by email when the portal sends email, otherwise made by staff on request; " +
			"the answer is the same whether or not the email has an account", tag: "auth", public: true,
			body: "PasswordForgot", status: 202, response: oaObject(oaObj{"message": oaString()}), errors: []int{422, 429}}},
		"/auth/password/reset": {"post": {summary: "Choose a new password with the token of a reset link (it works once, within an hour); every session ends",
			tag: "auth", public: true, body: "PasswordReset", status: 204, errors: []int{404, 422, 429}}},
		"/auth/two-factor/setup": {"post": {summary: "Start two-factor enrolment: a new authenticator secret, in force once a code from it is confirmed " +
			"(a signed-in session only, not an API token)", tag: "auth", status: 200, response: oaRef("TwoFactorSetup"), errors: []int{403, 409}}},
		"/auth/two-factor/enable": {"post": {summary: "Confirm a code from the new authenticator and turn two-factor sign-in on; the recovery codes are in this answer only",
			tag: "auth", body: "TwoFactorCode", status: 200, response: oaRef("RecoveryCodes"), errors: []int{403, 409, 422}}},
		"/auth/two-factor/recovery-codes": {"post": {summary: "Replace the recovery codes, for a current code; the old ones stop working",
			tag: "auth", body: "TwoFactorCode", status: 200, response: oaRef("RecoveryCodes"), errors: []int{403, 409, 422, 429}}},
		"/auth/two-factor/disable": {"post": {summary: "Turn two-factor sign-in off, for the password and a code",
			tag: "auth", body: "TwoFactorDisable", status: 204, errors: []int{403, 409, 422, 429}}},
		"/auth/logout": {"post": {summary: "End the session this token belongs to", tag: "auth", status: 204, errors: []int{401, 422}}},
		"/auth/sessions": {"get": {summary: "The user's open sessions (browsers and API session tokens)", tag: "auth", status: 200,
			response: oaRef("SessionList")}},
		"/auth/sign-out-everywhere": {"post": {summary: "End every other session of the user; API tokens stay", tag: "auth", status: 200,
			response: oaRef("SignOut")}},
		"/account": {"get": {summary: "Who the token belongs to", tag: "account", status: 200, response: oaRef("Account")}},
		"/quota":   {"get": {summary: "Quota limits and usage", tag: "account", status: 200, response: oaRef("QuotaUsage"), errors: []int{403}}},
		"/ssh-keys": {
			"get":  {summary: "List SSH keys", tag: "ssh-keys", status: 200, response: oaList("SSHKey"), params: oaPaging(), errors: []int{400, 403}},
			"post": {summary: "Add an SSH key", tag: "ssh-keys", body: "SSHKeyCreate", status: 201, response: oaRef("SSHKey"), errors: []int{403, 409}},
		},
		"/ssh-keys/{id}": {
			"get":    {summary: "Get an SSH key", tag: "ssh-keys", status: 200, response: oaRef("SSHKey"), errors: []int{403, 404}},
			"delete": {summary: "Delete an SSH key", tag: "ssh-keys", status: 204, errors: []int{403, 404}},
		},
		"/plans":  {"get": {summary: "Plans on offer, with whether each fits the quota", tag: "catalog", status: 200, response: oaItems("Plan")}},
		"/images": {"get": {summary: "Images on offer", tag: "catalog", status: 200, response: oaItems("Image")}},
		"/vms": {
			"get":  {summary: "List VMs", tag: "vms", status: 200, response: oaList("VM"), params: oaPaging(), errors: []int{400, 403}},
			"post": {summary: "Order a VM; it stays pending until provisioned", tag: "vms", body: "VMCreate", status: 201, response: oaRef("VM"), errors: []int{403, 409}},
		},
		"/vms/{id}": {
			"get": {summary: "Get a VM with its timeline and operations", tag: "vms", status: 200, response: oaRef("VMDetail"), errors: []int{403, 404}},
			"patch": {summary: "Change what of the VM is published at its DNS name on the ISP's public address", tag: "vms", body: "VMUpdate",
				status: 200, response: oaRef("VMExposed"), errors: []int{403, 404}},
			"delete": {summary: "Queue the VM's deletion", tag: "vms", status: 202, response: oaRef("Operation"), errors: []int{403, 404, 409}},
		},
		"/forwards": {
			"get": {summary: "List port forwards", tag: "network", status: 200, response: oaList("Forward"), params: oaPaging(), errors: []int{400, 403}},
			"post": {summary: "Forward a public TCP port to a port of a VM, within quota", tag: "network", body: "ForwardCreate",
				status: 201, response: oaRef("Forward"), errors: []int{403, 404, 409}},
		},
		"/forwards/{id}": {"delete": {summary: "Remove a port forward", tag: "network", status: 204, errors: []int{403, 404}}},
		"/dns/records": {
			"get": {summary: "List extra DNS records of the organisation's subzone", tag: "network", status: 200, response: oaList("DNSRecord"),
				params: oaPaging(), errors: []int{400, 403}},
			"post": {summary: "Add a DNS record to the organisation's subzone", tag: "network", body: "DNSRecordCreate",
				status: 201, response: oaRef("DNSRecord"), errors: []int{403, 409}},
		},
		"/dns/records/{id}": {"delete": {summary: "Remove a DNS record", tag: "network", status: 204, errors: []int{403, 404}}},
		"/vms/{id}/reverse-dns": {
			"get": {summary: "The PTR name of the VM's address", tag: "network", status: 200, response: oaRef("ReverseDNS"), errors: []int{403, 404}},
			"put": {summary: "Set the PTR name of the VM's address; it must resolve to the address in our DNS (422 names what does not fit), and the empty string returns to the VM's own name",
				tag: "network", body: "ReverseDNSUpdate", status: 200, response: oaRef("ReverseDNS"), errors: []int{403, 404, 409}},
		},
		"/vms/{id}/metrics": {"get": {summary: "CPU, memory, disk and network use of the VM over the last hour, day or week, oldest sample first",
			tag: "vms", status: 200, response: oaRef("VMMetrics"),
			params: []oaObj{oaQuery("range", "hour (default), day or week; anything else is refused with 422", oaEnum("hour", "day", "week"))}, errors: []int{403, 404, 422}}},
		"/vms/{id}/console": {"get": {summary: "Open the VM's serial console: a WebSocket (send Connection: Upgrade, Upgrade: websocket and the bearer token). " +
			"Binary or text messages you send are typed into the console; binary messages from the server are what the guest prints. " +
			"Owners and members only; one session per VM; it closes after the idle timeout without input (default 15 minutes) and is audited at open and close (vm.console, vm.console_closed)",
			tag: "vms", status: 101, description: "Switching to the WebSocket protocol.", errors: []int{403, 404, 409, 426, 502, 503}}},
		"/vms/{id}/snapshots": {
			"get": {summary: "The VM's snapshots, newest first", tag: "vms", status: 200, response: oaItems("Snapshot"), errors: []int{403, 404}},
			"post": {summary: "Queue a snapshot of the VM's disk: a running VM is shut down for the copy and started again; the snapshot counts against the snapshot quota (count and GiB, 422 names the limit)",
				tag: "vms", body: "SnapshotCreate", status: 202, response: oaRef("SnapshotTaken"), errors: []int{403, 404, 409}},
		},
		"/vms/{id}/snapshots/{snapshotID}": {
			"get":    {summary: "Get a snapshot", tag: "vms", status: 200, response: oaRef("Snapshot"), errors: []int{403, 404}},
			"delete": {summary: "Queue the deletion of a snapshot; its quota is given back once its volume is gone", tag: "vms", status: 202, response: oaRef("Operation"), errors: []int{403, 404, 409}},
		},
		"/vms/{id}/snapshots/{snapshotID}/restore": {"post": {summary: "Queue the restore of the VM's disk from a ready snapshot: the VM is shut down, its disk replaced and started again with the same name, address and host keys; what was written since the snapshot is lost",
			tag: "vms", status: 202, response: oaRef("Operation"), errors: []int{403, 404, 409}}},
		"/vms/{id}/password-reset": {"post": {summary: "Rescue a VM whose key is lost: give the image's default user a new random console password, " +
			"answered once (Cache-Control: no-store). The VM reboots to take it (the operation is that reboot); it works on the serial console only, " +
			"SSH still takes keys alone. Owners and members only; the VM must be running; audited as vm.password_reset",
			tag: "vms", status: 202, response: oaRef("VMPasswordReset"), errors: []int{403, 404, 409}}},
		"/vms/{id}/actions": {"post": {summary: "Queue start, stop, reboot, rebuild (optionally from another image), resize to another plan, or delete",
			tag: "vms", body: "VMAction", status: 202, response: oaRef("Operation"), errors: []int{402, 403, 404, 409}}},
		"/audit": {"get": {summary: "The organisation's audit log, newest first", tag: "account", status: 200,
			response: oaList("AuditEntry"), params: oaPaging(audit...), errors: []int{400, 403}}},
		"/billing/usage": {"get": {summary: "The month so far: metered usage per resource, a forecast for the month and the balance (owners)",
			tag: "billing", status: 200, response: oaRef("Usage"), errors: []int{403}}},
		"/billing/invoices": {"get": {summary: "Invoices and credit notes, newest first (owners)", tag: "billing", status: 200,
			response: oaList("Invoice"), params: oaPaging(), errors: []int{400, 403}}},
		"/billing/invoices/{id}": {"get": {summary: "An invoice with its lines; …/{id}.pdf is the PDF (owners)", tag: "billing", status: 200,
			response: oaRef("Invoice"), errors: []int{403, 404}}},
		"/admin/billing/settings": {
			"get": {summary: "Currency, VAT rate and invoice numbering", tag: "admin-billing", status: 200, response: oaRef("BillingSettings")},
			"put": {summary: "Set the currency (only while no price exists) and the VAT rate", tag: "admin-billing", body: "BillingSettingsUpdate",
				status: 200, response: oaRef("BillingSettings"), errors: []int{403, 409}},
		},
		"/admin/billing/prices": {
			"get": {summary: "Every price version, oldest first", tag: "admin-billing", status: 200, response: oaItems("AdminPrice")},
			"post": {summary: "Add a price version for a plan (item plan:<id>), for port forwards (item port_forward) or per GiB of snapshot (item snapshot-gib), from now or a later hour",
				tag: "admin-billing", body: "PriceCreate", status: 201, response: oaRef("AdminPrice"), errors: []int{403, 404, 409}},
		},
		"/admin/billing/invoices": {"get": {summary: "Every tenant's invoices and credit notes, newest first", tag: "admin-billing", status: 200,
			response: oaList("Invoice"), params: oaPaging(oaQuery("tenant_id", "only this tenant's", oaString())), errors: []int{400}}},
		"/admin/billing/invoices/issue": {"post": {summary: "Issue the invoices of a month that has ended (all tenants, or one); tenants already invoiced are skipped",
			tag: "admin-billing", body: "InvoiceIssue", status: 200, response: oaRef("InvoiceIssueReport"), errors: []int{403}}},
		"/admin/billing/invoices/{id}": {"get": {summary: "An invoice with its lines; …/{id}.pdf is the PDF", tag: "admin-billing", status: 200,
			response: oaRef("Invoice"), errors: []int{404}}},
		"/admin/billing/invoices/{id}/credit-notes": {"post": {summary: "Correct an invoice with a credit note (amount before VAT)", tag: "admin-billing",
			body: "CreditNoteCreate", status: 201, response: oaRef("Invoice"), errors: []int{403, 404}}},
		"/admin/billing/export": {"get": {summary: "A month's invoices and credit notes as CSV, for accounting", tag: "admin-billing", status: 200,
			media: "text/csv", params: []oaObj{oaQuery("month", "the month, like 2026-11; default the month before this one", oaString())}, errors: []int{422}}},
		"/admin/billing/overdue": {"get": {summary: "Tenants whose balance is below their credit limit (below zero without one), most owing first",
			tag: "admin-billing", status: 200, response: oaItems("Overdue")}},
		"/admin/tenants/{id}/billing": {"get": {summary: "A tenant's balance and latest payments", tag: "admin-billing", status: 200,
			response: oaRef("TenantBilling"), errors: []int{404}}},
		"/admin/tenants/{id}/payments": {"post": {summary: "Record a payment (with its bank reference) or a credit", tag: "admin-billing",
			body: "PaymentCreate", status: 201, response: oaRef("Payment"), errors: []int{403, 404}}},
		"/admin/tenants/{id}/credit-limit": {"put": {summary: "Set how far below zero the balance may go before orders are refused (null: the default)",
			tag: "admin-billing", body: "CreditLimit", status: 200, response: oaRef("TenantBilling"), errors: []int{403, 404}}},

		"/admin/plans": {
			"get":  {summary: "All plans with VM counts", tag: "admin", status: 200, response: oaItems("AdminPlan"), errors: []int{404}},
			"post": {summary: "Create a plan", tag: "admin", body: "AdminPlanCreate", status: 201, response: oaRef("AdminPlan"), errors: []int{403, 404, 409}},
		},
		"/admin/plans/{id}": {"put": {summary: "Replace a plan", tag: "admin", body: "AdminPlanUpdate", status: 200,
			response: oaRef("AdminPlan"), errors: []int{403, 404, 409}}},
		"/admin/images": {
			"get":  {summary: "All images", tag: "admin", status: 200, response: oaItems("AdminImage"), errors: []int{404}},
			"post": {summary: "Register an image", tag: "admin", body: "AdminImageCreate", status: 201, response: oaRef("AdminImage"), errors: []int{403, 404, 409}},
		},
		"/admin/images/{id}": {"put": {summary: "Replace an image", tag: "admin", body: "AdminImageUpdate", status: 200,
			response: oaRef("AdminImage"), errors: []int{403, 404, 409}}},
		"/admin/tenants": {"get": {summary: "Search tenants", tag: "admin", status: 200, response: oaList("AdminTenant"),
			params: oaPaging(oaQuery("q", "Part of the name, slug or a member's email.", oaString())), errors: []int{400, 404}}},
		"/admin/tenants/{id}": {"get": {summary: "One tenant with usage and members", tag: "admin", status: 200,
			response: oaRef("AdminTenantDetail"), errors: []int{404}}},
		"/admin/tenants/{id}/quota": {"put": {summary: "Replace a tenant's quota", tag: "admin", body: "Quota", status: 200,
			response: oaRef("AdminTenantDetail"), errors: []int{403, 404}}},
		"/admin/tenants/{id}/suspend": {"post": {summary: "Suspend a tenant", tag: "admin", body: "Suspend", status: 200,
			response: oaRef("AdminTenantDetail"), errors: []int{403, 404, 409}}},
		"/admin/tenants/{id}/unsuspend": {"post": {summary: "Lift a suspension", tag: "admin", status: 200,
			response: oaRef("AdminTenantDetail"), errors: []int{403, 404, 409}}},
		"/admin/users/{id}/password-reset": {"post": {summary: "Make a one-time password reset link for a user, to hand over; operators for customers, admins for anyone",
			tag: "admin", status: 201, response: oaRef("PasswordResetLink"), errors: []int{403, 404}}},
		"/admin/password-reset-requests": {"get": {summary: "Password reset requests waiting for a link from staff", tag: "admin", status: 200,
			response: oaList("PasswordResetRequest"), params: oaPaging(), errors: []int{400, 404}}},
		"/admin/security": {
			"get": {summary: "Staff sign-in policy", tag: "admin", status: 200, response: oaRef("Security"), errors: []int{404}},
			"put": {summary: "Require or stop requiring two-factor sign-in for staff; requiring it needs your own account to have it",
				tag: "admin", body: "Security", status: 200, response: oaRef("Security"), errors: []int{403, 404, 422}},
		},
		"/admin/quota-defaults": {
			"get": {summary: "Quota new tenants start with", tag: "admin", status: 200, response: oaRef("Quota"), errors: []int{404}},
			"put": {summary: "Replace the default quota", tag: "admin", body: "Quota", status: 200, response: oaRef("Quota"), errors: []int{403, 404}},
		},
		"/admin/users": {
			"get": {summary: "Search users", tag: "admin", status: 200, response: oaList("AdminUser"),
				params: oaPaging(oaQuery("q", "Part of the email.", oaString())), errors: []int{400, 404}},
			"post": {summary: "Create a staff account", tag: "admin", body: "StaffCreate", status: 201, response: oaRef("User"), errors: []int{403, 404, 409}},
		},
		"/admin/vms": {"get": {summary: "Every tenant's VMs", tag: "admin", status: 200, response: oaList("AdminVM"), errors: []int{400, 404},
			params: oaPaging(oaQuery("tenant", "Part of the tenant's name.", oaString()), oaQuery("tenant_id", "One tenant.", oaString()),
				oaQuery("state", "One state.", oaString()))}},
		"/admin/vms/{id}/retry": {"post": {summary: "Send a VM in state error back to the provisioner", tag: "admin", status: 202,
			response: oaRef("AdminVM"), errors: []int{403, 404, 409}}},
		"/admin/hosts": {
			"get":  {summary: "All hosts with capacity figures", tag: "admin", status: 200, response: oaItems("Host"), errors: []int{404}},
			"post": {summary: "Register a host; it takes VMs once discovered", tag: "admin", body: "HostCreate", status: 201, response: oaRef("Host"), errors: []int{403, 404, 409}},
		},
		"/admin/hosts/{id}": {
			"get":    {summary: "One host by id or name", tag: "admin", status: 200, response: oaRef("Host"), errors: []int{404}},
			"patch":  {summary: "Change some of a host's settings", tag: "admin", body: "HostUpdate", status: 200, response: oaRef("Host"), errors: []int{403, 404}},
			"delete": {summary: "Remove a host that holds no VMs", tag: "admin", status: 204, errors: []int{403, 404, 409}},
		},
		"/admin/subnets": {
			"get":  {summary: "All subnets with address usage", tag: "admin", status: 200, response: oaItems("Subnet"), errors: []int{404}},
			"post": {summary: "Add a subnet VMs take addresses from", tag: "admin", body: "SubnetCreate", status: 201, response: oaRef("Subnet"), errors: []int{403, 404, 409}},
		},
		"/admin/subnets/{id}": {"delete": {summary: "Remove a subnet no VM holds an address in", tag: "admin", status: 204, errors: []int{403, 404, 409}}},
		"/admin/machines": {
			"get": {summary: "Bare-metal machines", tag: "admin", status: 200, response: oaList("Machine"), errors: []int{400, 404},
				params: oaPaging(oaQuery("state", "One lifecycle state.", oaEnum(machineStates...)))},
			"post": {summary: "Enlist a machine by hand", tag: "admin", body: "MachineCreate", status: 201, response: oaRef("MachineDetail"), errors: []int{403, 404, 409}},
		},
		"/admin/machines/{id}": {
			"get":    {summary: "One machine by id or name, with inventory and timeline", tag: "admin", status: 200, response: oaRef("MachineDetail"), errors: []int{404}},
			"patch":  {summary: "Change a machine's name, MACs or power settings", tag: "admin", body: "MachineUpdate", status: 200, response: oaRef("MachineDetail"), errors: []int{403, 404, 409}},
			"delete": {summary: "Forget a machine that is not deploying or deployed", tag: "admin", status: 204, errors: []int{403, 404, 409}},
		},
		"/admin/machines/{id}/actions": {"post": {summary: "Move a machine through its lifecycle or queue a power command", tag: "admin", body: "MachineAction",
			status: 202, response: oaRef("MachineDetail"), errors: []int{403, 404, 409}}},
		"/admin/discovered": {"get": {summary: "MACs that PXE-booted without being enlisted", tag: "admin", status: 200, response: oaList("Discovered"),
			params: oaPaging(), errors: []int{400, 404}}},
		"/admin/discovered/{id}/enlist": {"post": {summary: "Enlist a discovered MAC (the id) as a machine with manual power", tag: "admin", body: "EnlistDiscovered",
			status: 201, response: oaRef("MachineDetail"), errors: []int{403, 404, 409}}},
		"/admin/boot-subnets": {
			"get": {summary: "Networks the DHCP server answers on, with how much of each dynamic range is leased", tag: "admin", status: 200,
				response: oaItems("BootSubnet"), errors: []int{404}},
			"post": {summary: "Add a network the DHCP server answers on", tag: "admin", body: "BootSubnetCreate", status: 201,
				response: oaRef("BootSubnet"), errors: []int{403, 404, 409}},
		},
		"/admin/boot-subnets/{id}": {
			"get":    {summary: "One boot subnet by id or name, with its reservations", tag: "admin", status: 200, response: oaRef("BootSubnetDetail"), errors: []int{404}},
			"delete": {summary: "Remove a boot subnet with its reservations and leases", tag: "admin", status: 204, errors: []int{403, 404, 409}},
		},
		"/admin/boot-subnets/{id}/reservations": {
			"get": {summary: "A boot subnet's reservations by address", tag: "admin", status: 200, response: oaItems("Reservation"), errors: []int{404}},
			"post": {summary: "Give a MAC a fixed address in the boot subnet", tag: "admin", body: "ReservationCreate", status: 201,
				response: oaRef("Reservation"), errors: []int{403, 404, 409}},
		},
		"/admin/boot-subnets/{id}/reservations/{mac}": {"delete": {summary: "Remove a MAC's reservation; its lease stays until it runs out", tag: "admin",
			status: 204, errors: []int{403, 404, 422}}},
		"/admin/boot-subnets/{id}/leases": {"get": {summary: "A boot subnet's leases by address, expired ones included", tag: "admin", status: 200,
			response: oaList("Lease"), params: oaPaging(oaQuery("state", "Only leases in this state.", oaEnum(leaseStates()...))), errors: []int{400, 404}}},
		"/admin/audit": {"get": {summary: "The whole audit log, newest first", tag: "admin", status: 200, response: oaList("AuditEntry"), errors: []int{400, 404},
			params: oaPaging(append([]oaObj{oaQuery("tenant", "Tenant id.", oaString()), oaQuery("actor", "Part of the actor's email.", oaString())}, audit...)...)}},
		"/admin/deploy-ssh-keys": {
			"get": {summary: "Staff SSH keys every machine deploy installs for the image's default user", tag: "admin", status: 200, response: oaRef("DeployKeys"), errors: []int{404}},
			"put": {summary: "Replace the staff deploy keys (each checked like a customer's key)", tag: "admin", body: "DeployKeys", status: 200, response: oaRef("DeployKeys"), errors: []int{403, 404, 422}},
		},
	}

	for name, ex := range oaExamples() {
		schemas[name].(oaObj)["example"] = ex
	}
	idParam := oaObj{"name": "id", "in": "path", "required": true, "schema": oaString()}
	macParam := oaObj{"name": "mac", "in": "path", "required": true, "description": "MAC address, e.g. 52:54:00:12:34:56", "schema": oaString()}
	snapParam := oaObj{"name": "snapshotID", "in": "path", "required": true, "schema": oaString()}
	outPaths := oaObj{}
	for path, ops := range paths {
		item := oaObj{}
		for method, op := range ops {
			item[method] = op.build()
		}
		var params []oaObj
		if strings.Contains(path, "{id}") {
			params = append(params, idParam)
		}
		if strings.Contains(path, "{mac}") {
			params = append(params, macParam)
		}
		if strings.Contains(path, "{snapshotID}") {
			params = append(params, snapParam)
		}
		if len(params) > 0 {
			item["parameters"] = params
		}
		outPaths[path] = item
	}
	return oaObj{
		"openapi": "3.0.3",
		"info": oaObj{
			"title":       "Fibrix Cloud API",
			"version":     version,
			"description": "Order and manage virtual machines. Authenticate with a bearer token: a session token from /auth/login or an API token (fbx_…). Errors are {\"error\":{code,message,field,request_id}}; lists take ?page= and ?per_page=. Memory is in MiB, disk in GiB, times are RFC 3339 UTC.",
		},
		"servers":  []oaObj{{"url": apiPrefix}},
		"security": []oaObj{{"bearerAuth": []string{}}},
		"paths":    outPaths,
		"components": oaObj{
			"schemas": schemas,
			"securitySchemes": oaObj{"bearerAuth": oaObj{"type": "http", "scheme": "bearer",
				"description": "A session token from /auth/login or /auth/signup, or an API token fbx_…"}},
		},
	}
}
