package portal

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// adminMachineFields are the machine forms' inputs, for inline errors.
func adminMachineFields() []string {
	return []string{"name", "macs", "power_type", "power_params", "boot_mode", "power_password"}
}

// machineInputError shows the store's refusal of the boot_mode parameter
// at the form's own boot mode field.
func machineInputError(err error) error {
	if e, ok := store.AsError(err); ok && e.Field == "power_params" && strings.HasPrefix(e.Message, store.BootModeParam+" ") {
		return store.E(e.Kind, "boot_mode", e.Message)
	}
	return err
}

func adminMachineRow(m store.Machine, macs []string) views.AdminMachineRow {
	return views.AdminMachineRow{ID: m.ID, Name: m.Name, State: m.State, PowerType: m.PowerType, MACs: macs,
		Cores: m.Cores, MemoryMiB: m.MemoryMiB}
}

// readMachineForm reads the enlist/settings form: MACs one per line or
// comma-separated, parameters as key=value lines, the boot mode in its own
// field (bios, the default, is no parameter). The password is sealed at
// once and never goes back into the form.
func (s *Server) readMachineForm(c *fiber.Ctx) (views.AdminMachineForm, store.MachineInput, error) {
	f := views.AdminMachineForm{Name: strings.TrimSpace(c.FormValue("name")), MACs: strings.TrimSpace(c.FormValue("macs")),
		PowerType: c.FormValue("power_type"), PowerParams: strings.TrimSpace(c.FormValue("power_params")),
		BootMode: strings.ToLower(strings.TrimSpace(c.FormValue("boot_mode")))}
	in := store.MachineInput{Name: f.Name, PowerType: f.PowerType, PowerParams: map[string]string{},
		MACs: append([]string{}, strings.FieldsFunc(f.MACs, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' })...)}
	for _, line := range strings.Split(f.PowerParams, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return f, in, store.E(store.ErrInvalid, "power_params", "write each parameter as key=value")
		}
		k = strings.TrimSpace(k)
		if strings.EqualFold(k, store.BootModeParam) {
			return f, in, store.E(store.ErrInvalid, "power_params", "choose the boot mode in its own field, not as a parameter")
		}
		in.PowerParams[k] = strings.TrimSpace(v)
	}
	switch f.BootMode {
	case "", store.BootModeBIOS:
	case store.BootModeUEFI:
		in.PowerParams[store.BootModeParam] = f.BootMode
	default:
		return f, in, store.E(store.ErrInvalid, "boot_mode", "choose bios or uefi")
	}
	sealed, err := s.seal(c.FormValue("power_password"))
	if err != nil {
		return f, in, err
	}
	in.PowerSecretSealed = sealed
	return f, in, nil
}

// adminMachinesView loads the list page.
func (s *Server) adminMachinesView(c *fiber.Ctx, form views.AdminMachineForm, errs views.FormErrors) (views.AdminMachinesView, error) {
	ctx := c.UserContext()
	p := pageOf(c)
	state := c.Query("state")
	if !slices.Contains(store.MachineStates(), state) {
		state = ""
	}
	ms, total, err := s.store.ListMachines(ctx, p, state)
	if err != nil {
		return views.AdminMachinesView{}, err
	}
	ds, _, err := s.store.ListDiscovered(ctx, store.Page{PerPage: store.MaxPerPage})
	if err != nil {
		return views.AdminMachinesView{}, err
	}
	v := views.AdminMachinesView{Page: s.page(c, "Machines", "admin-machines"), Pager: pager(c, p, total, "state"), State: state,
		States: store.MachineStates(), Form: form, Errors: errs}
	for _, m := range ms {
		v.Machines = append(v.Machines, adminMachineRow(m.Machine, m.MACs))
	}
	for _, d := range ds {
		v.Discovered = append(v.Discovered, views.AdminDiscoveredRow{MAC: d.MAC, VendorClass: d.VendorClass, Arch: d.Arch, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen})
	}
	keys, err := s.store.DeploySSHKeys(ctx)
	if err != nil {
		return views.AdminMachinesView{}, err
	}
	v.DeployKeys = strings.Join(keys, "\n")
	return v, nil
}

// webAdminDeployKeys replaces the staff deploy keys from the textarea, one
// key per line; blank lines and # comments are skipped.
func (s *Server) webAdminDeployKeys(c *fiber.Ctx) error {
	raw := c.FormValue("keys")
	var keys []string
	for _, l := range strings.Split(raw, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	_, err := s.store.SetDeploySSHKeys(c.UserContext(), s.actor(c), keys)
	if err == nil {
		return s.redirect(c, "/admin/machines", "success", fmt.Sprintf("%d deploy key(s) saved.", len(keys)))
	}
	errs, err := formFailure(c, err, "keys")
	if err != nil {
		return err
	}
	v, err := s.adminMachinesView(c, views.AdminMachineForm{PowerType: store.PowerIPMI}, nil)
	if err != nil {
		return err
	}
	v.DeployKeys, v.DeployKeysErrors = raw, errs
	return s.render(c, views.AdminMachines(v))
}

func (s *Server) webAdminMachineList(c *fiber.Ctx) error {
	v, err := s.adminMachinesView(c, views.AdminMachineForm{PowerType: store.PowerIPMI}, nil)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminMachines(v))
}

func (s *Server) webAdminMachineCreate(c *fiber.Ctx) error {
	form, in, err := s.readMachineForm(c)
	if err == nil {
		var m store.Machine
		if m, err = s.store.EnlistMachine(c.UserContext(), s.actor(c), in); err == nil {
			return s.redirect(c, "/admin/machines/"+url.PathEscape(m.ID), "success", "Machine "+m.Name+" enlisted; commission it to learn its hardware.")
		}
	}
	errs, err := formFailure(c, machineInputError(err), adminMachineFields()...)
	if err != nil {
		return err
	}
	v, err := s.adminMachinesView(c, form, errs)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminMachines(v))
}

// webAdminMachineEnlistDiscovered enlists a discovered MAC in one click.
func (s *Server) webAdminMachineEnlistDiscovered(c *fiber.Ctx) error {
	mac, err := url.PathUnescape(c.Params("id"))
	if err != nil {
		return errNotFound("discovered MAC")
	}
	m, err := s.store.EnlistDiscovered(c.UserContext(), s.actor(c), mac, c.FormValue("name"))
	if err != nil {
		if he := classify(err); he.status == fiber.StatusNotFound || he.status >= 500 {
			return err
		}
		return s.redirect(c, "/admin/machines", "error", "Could not enlist "+mac+": "+classify(err).message)
	}
	return s.redirect(c, "/admin/machines/"+url.PathEscape(m.ID), "success", "Machine "+m.Name+" enlisted with manual power; set its power driver below.")
}
