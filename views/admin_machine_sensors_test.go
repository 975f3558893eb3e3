package views

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
)

// TestAdminMachineSensors renders the Sensors article of the machine page
// in each of its states: readings in a table, never read (IPMI), a driver
// without sensors, and a BMC without sensor records.
func TestAdminMachineSensors(t *testing.T) {
	readAt := adminTestTime.Add(-3 * time.Minute)
	view := func(powerType string, s AdminMachineSensors) AdminMachineView {
		return AdminMachineView{Page: adminTestPage("auditor", "admin-machines"),
			Machine: AdminMachineRow{ID: "m-1", Name: "node-1", State: "ready", PowerType: powerType, MACs: []string{"52:54:00:00:00:01"}},
			Sensors: s}
	}
	empties := []string{"machine-sensors-empty", "machine-sensors-unsupported", "machine-sensors-none", "machine-sensors-table"}
	only := func(t *testing.T, html string, want string) {
		t.Helper()
		for _, id := range empties {
			if got := strings.Contains(html, `data-testid="`+id+`"`); got != (id == want) {
				t.Errorf("%s shown = %v; want %v", id, got, id == want)
			}
		}
	}

	t.Run("readings", func(t *testing.T) {
		doc := adminRender(t, AdminMachine(view("ipmi", AdminMachineSensors{Supported: true, ReadAt: &readAt, Age: 3*time.Minute + 20*time.Second,
			Readings: []AdminMachineSensor{
				{Name: "CPU Temp", Type: "Temperature", Value: 45, Unit: "degrees C", Status: "ok"},
				{Name: "Vcore", Type: "Voltage", Value: 1.3120000001, Unit: "Volts", Status: "lcr"},
				{Name: "Fan 2", Type: "Fan", Value: 0, Unit: "RPM", Status: "N/A"},
				{Name: "PSU <1>", Type: "Power Supply", Value: 0, Unit: "", Status: "0x0100"},
			}})))
		html, _ := doc.Html()
		only(t, html, "machine-sensors-table")
		var rows [][]string
		doc.Find(tid("machine-sensor-row")).Each(func(_ int, s *goquery.Selection) {
			var cells []string
			s.Find("td").Each(func(_ int, c *goquery.Selection) { cells = append(cells, strings.TrimSpace(c.Text())) })
			cells = append(cells, s.Find(tid("machine-sensor-status")).AttrOr("data-status", ""))
			rows = append(rows, cells)
		})
		want := [][]string{
			{"CPU Temp", "Temperature", "45 degrees C", "ok", "ok"},
			{"Vcore", "Voltage", "1.312 Volts", "low (critical)", "lcr"},
			{"Fan 2", "Fan", "—", "no reading", "N/A"},
			{"PSU <1>", "Power Supply", "—", "0x0100", "0x0100"},
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("sensor rows (-want +got):\n%s", diff)
		}
		if cls := doc.Find(tid("machine-sensor-status")+`[data-status="lcr"]`).AttrOr("class", ""); !strings.Contains(cls, "tone-bad") {
			t.Errorf("critical status class = %q; want tone-bad", cls)
		}
		readAtText := strings.Join(strings.Fields(adminMustHave(t, doc, tid("machine-sensors-read-at")).Text()), " ")
		if readAtText != "read 3 minutes ago" {
			t.Errorf("read at = %q; want %q", readAtText, "read 3 minutes ago")
		}
		if dt := doc.Find(tid("machine-sensors-read-at")+" time").AttrOr("datetime", ""); dt != readAt.Format(time.RFC3339) {
			t.Errorf("datetime = %q; want %q", dt, readAt.Format(time.RFC3339))
		}
	})

	t.Run("never read", func(t *testing.T) {
		doc := adminRender(t, AdminMachine(view("ipmi", AdminMachineSensors{Supported: true})))
		html, _ := doc.Html()
		only(t, html, "machine-sensors-empty")
		if got := adminMustHave(t, doc, tid("machine-sensors-empty")).Text(); !strings.Contains(got, "No sensor readings yet: IPMI machines are read every poll (1 minute)") {
			t.Errorf("empty state = %q", got)
		}
		if doc.Find(tid("machine-sensors-read-at")).Length() != 0 {
			t.Error("a read time shown for readings never taken")
		}
	})

	t.Run("driver without sensors", func(t *testing.T) {
		doc := adminRender(t, AdminMachine(view("wol", AdminMachineSensors{})))
		html, _ := doc.Html()
		only(t, html, "machine-sensors-unsupported")
		if got := adminMustHave(t, doc, tid("machine-sensors-unsupported")).Text(); !strings.Contains(got, "this power driver has no sensors") {
			t.Errorf("unsupported state = %q", got)
		}
	})

	t.Run("BMC without sensors", func(t *testing.T) {
		doc := adminRender(t, AdminMachine(view("ipmi", AdminMachineSensors{Supported: true, ReadAt: &readAt, Age: 30 * time.Second})))
		html, _ := doc.Html()
		only(t, html, "machine-sensors-none")
		if got := strings.Join(strings.Fields(doc.Find(tid("machine-sensors-read-at")).Text()), " "); got != "read less than a minute ago" {
			t.Errorf("read at = %q", got)
		}
	})
}

func TestAdminAgo(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "less than a minute ago"},
		{59 * time.Second, "less than a minute ago"},
		{time.Minute, "1 minute ago"},
		{59 * time.Minute, "59 minutes ago"},
		{time.Hour, "1 hour ago"},
		{47 * time.Hour, "47 hours ago"},
		{48 * time.Hour, "2 days ago"},
	} {
		if got := adminAgo(tc.d); got != tc.want {
			t.Errorf("adminAgo(%v) = %q; want %q", tc.d, got, tc.want)
		}
	}
}
