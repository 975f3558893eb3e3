package portal

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/inventory"
	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

func machineFormOf(d store.MachineDetail) views.AdminMachineForm {
	macs := make([]string, len(d.MACs))
	for i, m := range d.MACs {
		macs[i] = m.MAC
	}
	var lines []string
	params := d.Params()
	mode := params[store.BootModeParam]
	delete(params, store.BootModeParam) // shown in its own field
	for _, k := range slices.Sorted(maps.Keys(params)) {
		lines = append(lines, k+"="+params[k])
	}
	return views.AdminMachineForm{Name: d.Name, MACs: strings.Join(macs, "\n"), PowerType: d.PowerType, PowerParams: strings.Join(lines, "\n"),
		BootMode: mode}
}

// adminMachineView loads the machine page; form nil shows the stored settings.
func (s *Server) adminMachineView(c *fiber.Ctx, id string, form *views.AdminMachineForm, errs, actionErrs views.FormErrors) (views.AdminMachineView, error) {
	ctx := c.UserContext()
	d, err := s.store.GetMachine(ctx, id)
	if err != nil {
		return views.AdminMachineView{}, err
	}
	macs := make([]string, len(d.MACs))
	for i, m := range d.MACs {
		macs[i] = m.MAC
	}
	v := views.AdminMachineView{Page: s.page(c, "Machine "+d.Name, "admin-machines"), Machine: adminMachineRow(d.Machine, macs),
		StateChangedAt: d.StateChangedAt, LastError: d.LastError, HasPassword: d.PowerSecret != "", PowerState: d.PowerState,
		Actions: store.MachineActionsFrom(d.State), PowerActions: store.MachinePowerActions(), DeployDisk: d.DeployDisk,
		DeployKVMHost: d.DeployKVMHost, SSHHostKey: d.SSHHostKey, HostID: d.HostID, KVMHostUser: store.KVMHostLoginUser,
		Errors: errs, ActionErrors: actionErrs}
	if d.HostID != "" {
		if h, err := s.store.GetHost(ctx, d.HostID); err == nil {
			v.HostName = h.Name
		} else {
			v.HostID = ""
		}
	}
	params := d.Params()
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v.PowerParams = append(v.PowerParams, views.AdminMachineKV{Key: k, Value: params[k]})
	}
	if form != nil {
		v.Form = *form
	} else {
		v.Form = machineFormOf(d)
	}
	var inv inventory.Inventory
	if d.Inventory != "" && json.Unmarshal([]byte(d.Inventory), &inv) == nil {
		v.Commissioned, v.CPUModel, v.Threads = true, inv.CPU.Model, inv.CPU.Threads
		if inv.BMC.Present {
			v.BMC = "present"
			if inv.BMC.Note != "" {
				v.BMC += " (" + inv.BMC.Note + ")"
			}
		} else if inv.BMC.Note != "" {
			v.BMC = inv.BMC.Note
		}
		for _, dk := range inv.Disks {
			v.Disks = append(v.Disks, views.AdminMachineDisk{Name: dk.Name, SizeBytes: dk.SizeBytes, Model: dk.Model, Serial: dk.Serial, Rotational: dk.Rotational})
		}
		for _, n := range inv.NICs {
			v.NICs = append(v.NICs, views.AdminMachineNIC{Name: n.Name, MAC: n.MAC, Link: n.Link, SpeedMbps: n.SpeedMbps})
		}
	}
	v.Sensors = adminMachineSensors(d.Machine, time.Now())
	images, err := s.store.ListImages(ctx, true, store.ImageMachine)
	if err != nil {
		return views.AdminMachineView{}, err
	}
	for _, im := range images {
		v.Images = append(v.Images, views.AdminImageOption{ID: im.ID, Name: im.Name})
		if im.ID == d.DeployImageID {
			v.DeployImage = im.Name
		}
	}
	for _, ev := range d.Events {
		e := views.AdminMachineEvent{At: ev.At, Kind: ev.Kind, From: ev.FromState, To: ev.ToState, Message: ev.Message}
		if ev.Kind == store.EventTransition {
			// A transition's detail is the reporting agent's message and log.
			e.Log = ev.Detail
		}
		v.Events = append(v.Events, e)
	}
	return v, nil
}

// adminMachineSensors is the Sensors article of m's page, made at now.
func adminMachineSensors(m store.Machine, now time.Time) views.AdminMachineSensors {
	out := views.AdminMachineSensors{Supported: slices.Contains(store.SensorPowerTypes(), m.PowerType), ReadAt: m.SensorsReadAt}
	if m.SensorsReadAt != nil {
		out.Age = max(now.Sub(*m.SensorsReadAt), 0)
	}
	for _, r := range m.SensorReadings() {
		out.Readings = append(out.Readings, views.AdminMachineSensor{Name: r.Name, Type: r.Type, Value: r.Value, Unit: r.Unit, Status: r.Status})
	}
	return out
}

func (s *Server) webAdminMachine(c *fiber.Ctx) error {
	v, err := s.adminMachineView(c, c.Params("id"), nil, nil, nil)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminMachine(v))
}

// webAdminMachineUpdate saves the settings form; an empty password keeps
// the stored one.
func (s *Server) webAdminMachineUpdate(c *fiber.Ctx) error {
	ctx := c.UserContext()
	cur, err := s.store.GetMachine(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	form, in, err := s.readMachineForm(c)
	if err == nil {
		if _, err = s.store.UpdateMachine(ctx, s.actor(c), cur.ID, in); err == nil {
			return s.redirect(c, "/admin/machines/"+url.PathEscape(cur.ID), "success", "Settings saved.")
		}
	}
	errs, err := formFailure(c, machineInputError(err), adminMachineFields()...)
	if err != nil {
		return err
	}
	v, err := s.adminMachineView(c, cur.ID, &form, errs, nil)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminMachine(v))
}

// webAdminMachineAction runs the button pressed: a transition or a power
// command for the provisioner.
func (s *Server) webAdminMachineAction(c *fiber.Ctx) error {
	ctx := c.UserContext()
	id := c.Params("id")
	action := c.FormValue("type")
	m, err := s.store.MachineAction(ctx, s.actor(c), id, action,
		store.MachineActionInput{Reason: c.FormValue("reason"), ImageID: c.FormValue("image"), Disk: c.FormValue("disk"), KVMHost: c.FormValue("kvm_host") != "", Erase: c.FormValue("erase") != ""})
	if err == nil {
		msg := "Machine " + m.Name + " is now " + strings.ReplaceAll(m.State, "_", " ") + "."
		if slices.Contains(store.MachinePowerActions(), action) {
			msg = strings.ReplaceAll(action, "_", " ") + " queued for " + m.Name + "."
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return s.redirect(c, "/admin/machines/"+url.PathEscape(m.ID), "success", msg)
	}
	errs, err := formFailure(c, err, "reason", "image", "disk", "kvm_host")
	if err != nil {
		return err
	}
	v, err := s.adminMachineView(c, id, nil, nil, errs)
	if err != nil {
		return err
	}
	return s.render(c, views.AdminMachine(v))
}

func (s *Server) webAdminMachineDelete(c *fiber.Ctx) error {
	ctx := c.UserContext()
	d, err := s.store.GetMachine(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteMachine(ctx, s.actor(c), d.ID); err != nil {
		if he := classify(err); he.status == fiber.StatusNotFound || he.status >= 500 {
			return err
		}
		return s.redirect(c, "/admin/machines/"+url.PathEscape(d.ID), "error", classify(err).message)
	}
	return s.redirect(c, "/admin/machines", "success", "Machine "+d.Name+" deleted.")
}
