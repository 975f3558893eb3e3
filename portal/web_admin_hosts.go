package portal

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/capacity"
	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminHostFields are the host forms' inputs, for inline errors.
func adminHostFields() []string {
	return []string{"name", "uri", "cpu_ratio", "memory_ratio", "disk_ratio", "reserved_cores", "reserved_memory_mib",
		"reserved_disk_gib", "storage_pool", "bridge"}
}

func adminCapacity(f capacity.Figure) views.AdminCapacity {
	return views.AdminCapacity{Physical: f.Physical, Ratio: f.Ratio, Overcommitted: f.Capacity, Reserved: f.Reserved,
		Allocated: f.Allocated, Free: f.Free}
}

func adminHostRow(h store.HostSummary) views.AdminHostRow {
	return views.AdminHostRow{ID: h.ID, Name: h.Name, URI: h.URI, State: h.State, LastError: h.LastError, Enabled: h.Enabled,
		Maintenance: h.Maintenance, VMCount: h.VMs, CPU: adminCapacity(h.Figures.CPU), Memory: adminCapacity(h.Figures.Memory),
		Disk: adminCapacity(h.Figures.Disk)}
}

// hostFormNumbers reads the ratio and reservation inputs. Empty inputs are
// 0 when blankOK (the store then takes the defaults), else an error.
type hostFormNumbers struct {
	ratios   [3]float64
	reserved [3]int64
	raw      [6]string
}

func readHostNumbers(c *fiber.Ctx, blankOK bool) (hostFormNumbers, views.FormErrors) {
	var n hostFormNumbers
	var errs views.FormErrors
	fail := func(field, msg string) {
		if errs == nil {
			errs = views.FormErrors{}
		}
		errs[field] = msg
	}
	for i, name := range []string{"cpu_ratio", "memory_ratio", "disk_ratio"} {
		n.raw[i] = strings.TrimSpace(c.FormValue(name))
		if n.raw[i] == "" && blankOK {
			continue
		}
		f, err := strconv.ParseFloat(n.raw[i], 64)
		if err != nil {
			fail(name, "enter a number such as 1.5")
			continue
		}
		n.ratios[i] = f
	}
	for i, name := range []string{"reserved_cores", "reserved_memory_mib", "reserved_disk_gib"} {
		n.raw[3+i] = strings.TrimSpace(c.FormValue(name))
		if n.raw[3+i] == "" && blankOK {
			continue
		}
		v, err := strconv.ParseInt(n.raw[3+i], 10, 64)
		if err != nil {
			fail(name, "enter a whole number")
			continue
		}
		n.reserved[i] = v
	}
	return n, errs
}

func (s *Server) adminHostsView(c *fiber.Ctx) (views.AdminHostsView, error) {
	hosts, err := s.store.ListHosts(c.UserContext())
	if err != nil {
		return views.AdminHostsView{}, err
	}
	key, err := s.store.Setting(c.UserContext(), store.SettingProvisionerSSHKey)
	if err != nil {
		return views.AdminHostsView{}, err
	}
	v := views.AdminHostsView{Page: s.page(c, "Hosts", "admin-hosts"), Hosts: make([]views.AdminHostRow, len(hosts)), ProvisionerKey: key}
	for i, h := range hosts {
		v.Hosts[i] = adminHostRow(h)
	}
	return v, nil
}

// webAdminHostList shows every host with its capacity and the add form.
func (s *Server) webAdminHostList(c *fiber.Ctx) error {
	v, err := s.adminHostsView(c)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminHosts(v))
}

// webAdminHostCreate registers a host; blank ratios take the defaults.
func (s *Server) webAdminHostCreate(c *fiber.Ctx) error {
	n, errs := readHostNumbers(c, true)
	form := views.AdminHostForm{Name: strings.TrimSpace(c.FormValue("name")), URI: strings.TrimSpace(c.FormValue("uri")),
		CPURatio: n.raw[0], MemoryRatio: n.raw[1], DiskRatio: n.raw[2], ReservedCores: n.raw[3], ReservedMemoryMiB: n.raw[4],
		ReservedDiskGiB: n.raw[5], StoragePool: strings.TrimSpace(c.FormValue("storage_pool")), Bridge: strings.TrimSpace(c.FormValue("bridge"))}
	if errs == nil {
		h, err := s.store.CreateHost(c.UserContext(), s.actor(c), store.HostInput{Name: form.Name, URI: form.URI,
			CPURatio: n.ratios[0], MemoryRatio: n.ratios[1], DiskRatio: n.ratios[2],
			ReservedCores: n.reserved[0], ReservedMemoryMiB: n.reserved[1], ReservedDiskGiB: n.reserved[2],
			StoragePool: form.StoragePool, Bridge: form.Bridge})
		if err == nil {
			return s.redirect(c, adminHostPath(h.ID), "success", "Host "+h.Name+" added; it takes VMs once the provisioner has discovered it.")
		}
		if errs, err = formFailure(c, err, adminHostFields()...); err != nil {
			return err
		}
	} else {
		adminInvalid(c)
	}
	v, err := s.adminHostsView(c)
	if err != nil {
		return err
	}
	v.Form, v.Errors = form, errs
	return s.render(c, views.AdminHosts(v))
}

func adminHostPath(id string) string { return "/admin/hosts/" + url.PathEscape(id) }

func strconvFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func i64s(n int64) string { return strconv.FormatInt(n, 10) }
