package portal

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// webVMConsole is the console page: a terminal that joins the VM's serial
// console through webVMConsoleSocket. It refuses what the socket would
// refuse, since a browser shows no status of a failed WebSocket.
func (s *Server) webVMConsole(c *fiber.Ctx) error {
	vm, err := s.store.GetVM(c.UserContext(), who(c).User.Tenant(), c.Params("id"))
	if err != nil {
		return err
	}
	if vm.State != store.VMRunning {
		return store.E(store.ErrInvalidTransition, "", "the console is there while the VM runs; it is "+vm.State)
	}
	if s.cfg.Consoles == nil {
		return consoleElsewhere
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, views.VMConsole(views.VMConsoleView{
		Page:        s.page(c, "Console of "+vm.Name, "vms"),
		VM:          views.VMInfo{ID: vm.ID, Name: vm.Name, State: vm.State},
		IdleTimeout: humanDuration(s.cfg.ConsoleIdle),
	}))
}

// humanDuration writes d for a person: "15 minutes", "1 hour 30 minutes",
// "45 seconds" (whole seconds; what is below a second is dropped).
func humanDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d <= 0 {
		return "0 seconds"
	}
	var parts []string
	for _, u := range []struct {
		size time.Duration
		name string
	}{{time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		n := d / u.size
		d -= n * u.size
		switch {
		case n == 1:
			parts = append(parts, "1 "+u.name)
		case n > 1:
			parts = append(parts, strconv.FormatInt(int64(n), 10)+" "+u.name+"s")
		}
	}
	return strings.Join(parts, " ")
}
