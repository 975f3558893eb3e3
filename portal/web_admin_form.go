package portal

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminFormInts parses the named form fields as whole numbers. A field that
// is not one gets an inline error and 0; raw holds what was typed so that a
// failed form can show it again.
func adminFormInts(c *fiber.Ctx, names ...string) (vals []int64, raw []string, errs views.FormErrors) {
	vals, raw = make([]int64, len(names)), make([]string, len(names))
	for i, name := range names {
		raw[i] = strings.TrimSpace(c.FormValue(name))
		n, err := strconv.ParseInt(raw[i], 10, 64)
		if err != nil {
			if errs == nil {
				errs = views.FormErrors{}
			}
			errs[name] = "enter a whole number"
			continue
		}
		vals[i] = n
	}
	return vals, raw, errs
}

// adminQuotaNames are the quota form fields in display order; they match
// the JSON names of store.Quota.
func adminQuotaNames() []string {
	return []string{"instances", "vcpus", "memory_mib", "disk_gib", "ssh_keys", "port_forwards", "snapshots", "snapshot_gib"}
}

// adminQuotaFields describes limits (and usage, on a tenant's page) for the
// quota forms, in the order of adminQuotaNames.
func adminQuotaFields(limits, used store.Quota) []views.AdminQuotaField {
	return []views.AdminQuotaField{
		{Name: "instances", Label: "Instances", Used: used.Instances, Limit: limits.Instances},
		{Name: "vcpus", Label: "vCPUs", Used: used.VCPUs, Limit: limits.VCPUs},
		{Name: "memory_mib", Label: "Memory", Used: used.MemoryMiB, Limit: limits.MemoryMiB, Unit: "MiB"},
		{Name: "disk_gib", Label: "Disk", Used: used.DiskGiB, Limit: limits.DiskGiB, Unit: "GiB"},
		{Name: "ssh_keys", Label: "SSH keys", Used: used.SSHKeys, Limit: limits.SSHKeys},
		{Name: "port_forwards", Label: "Port forwards", Used: used.PortForwards, Limit: limits.PortForwards},
		{Name: "snapshots", Label: "Snapshots", Used: used.Snapshots, Limit: limits.Snapshots},
		{Name: "snapshot_gib", Label: "Snapshot disk", Used: used.SnapshotGiB, Limit: limits.SnapshotGiB, Unit: "GiB"},
	}
}

// adminQuotaForm reads a submitted quota form. It copies what was typed into
// fields (built by adminQuotaFields) so the form can be shown again; errs is
// non-nil when a field is not a whole number. Range checks are the store's.
func adminQuotaForm(c *fiber.Ctx, fields []views.AdminQuotaField) (store.Quota, views.FormErrors) {
	names := adminQuotaNames()
	// The snapshot limits may be left out (forms made before snapshots
	// existed); they then keep the figures the fields were built with.
	for i, name := range names[6:] {
		if strings.TrimSpace(c.FormValue(name)) == "" {
			c.Request().PostArgs().Set(name, strconv.FormatInt(fields[6+i].Limit, 10))
		}
	}
	vals, raw, errs := adminFormInts(c, names...)
	for i := range fields {
		fields[i].Value = raw[i]
	}
	return store.Quota{Instances: vals[0], VCPUs: vals[1], MemoryMiB: vals[2], DiskGiB: vals[3], SSHKeys: vals[4], PortForwards: vals[5],
		Snapshots: vals[6], SnapshotGiB: vals[7]}, errs
}

// adminInvalid marks a re-rendered form as refused input.
func adminInvalid(c *fiber.Ctx) { c.Status(fiber.StatusUnprocessableEntity) }
