package portal

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestMachineSensors checks the machine's API answer and page before and
// after a poll recorded the BMC's sensor readings, with the documented keys,
// and the page of a machine whose driver has no sensors.
func TestMachineSensors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	doc := fetchOpenAPI(t, e)
	admin := e.staff(store.RoleAdmin)
	auditor := e.staffBrowser(store.RoleAuditor)

	m := e.want(http.StatusCreated, "POST", "/api/v1/admin/machines", admin, ipmiMachine("node-1", "52:54:00:ee:00:01"))
	id := m["id"].(string)
	if got, ok := m["sensors"].([]any); !ok || len(got) != 0 || m["sensors_read_at"] != nil {
		t.Errorf("new machine: sensors %#v read at %#v; want [] and null", m["sensors"], m["sensors_read_at"])
	}
	_, page := auditor.get("/admin/machines/" + id)
	if got := page.Find(`[data-testid="machine-sensors-empty"]`).Text(); !strings.Contains(got, "No sensor readings yet: IPMI machines are read every poll (1 minute)") {
		t.Errorf("empty state before any read = %q", got)
	}

	// A rack worker's poll.
	if ok, err := e.st.LeaseMachine(ctx, id, "worker-1", time.Minute); err != nil || !ok {
		t.Fatalf("lease = %v, %v", ok, err)
	}
	readings := []store.SensorReading{
		{Name: "CPU Temp", Type: "Temperature", Value: 45, Unit: "degrees C", Status: "ok"},
		{Name: "Fan 1", Type: "Fan", Value: 3120, Unit: "RPM", Status: "ucr"},
	}
	if err := e.st.RecordSensors(ctx, id, "worker-1", readings); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecordPowerState(ctx, id, "worker-1", "on"); err != nil {
		t.Fatal(err)
	}

	d := e.want(http.StatusOK, "GET", "/api/v1/admin/machines/"+id, admin, nil)
	schema := responseSchema(t, doc, "GET", "/admin/machines/{id}", "200")
	if got, want := keysOf(d), propertyNames(schema); !slices.Equal(got, want) {
		t.Errorf("machine keys %v, documented %v", got, want)
	}
	sensorSchema := resolve(doc, obj(obj(obj(schema["properties"])["sensors"])["items"]))
	var got []map[string]any
	for _, s := range d["sensors"].([]any) {
		got = append(got, obj(s))
		if k, want := keysOf(obj(s)), propertyNames(sensorSchema); !slices.Equal(k, want) {
			t.Errorf("sensor keys %v, documented %v", k, want)
		}
	}
	want := []map[string]any{
		{"name": "CPU Temp", "type": "Temperature", "value": 45.0, "unit": "degrees C", "status": "ok"},
		{"name": "Fan 1", "type": "Fan", "value": 3120.0, "unit": "RPM", "status": "ucr"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sensors (-want +got):\n%s", diff)
	}
	stored, err := e.st.GetMachine(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if at, _ := d["sensors_read_at"].(string); at != stored.SensorsReadAt.UTC().Format(time.RFC3339Nano) {
		t.Errorf("sensors_read_at = %#v; want %s", d["sensors_read_at"], stored.SensorsReadAt.UTC().Format(time.RFC3339Nano))
	}

	_, page = auditor.get("/admin/machines/" + id)
	var rows []string
	page.Find(`[data-testid="machine-sensor-row"]`).Each(func(_ int, s *goquery.Selection) {
		var cells []string
		s.Find("td").Each(func(_ int, c *goquery.Selection) { cells = append(cells, strings.TrimSpace(c.Text())) })
		rows = append(rows, strings.Join(cells, " | "))
	})
	if diff := cmp.Diff([]string{"CPU Temp | Temperature | 45 degrees C | ok", "Fan 1 | Fan | 3120 RPM | high (critical)"}, rows); diff != "" {
		t.Errorf("page rows (-want +got):\n%s", diff)
	}
	if got := strings.Join(strings.Fields(page.Find(`[data-testid="machine-sensors-read-at"]`).Text()), " "); got != "read less than a minute ago" {
		t.Errorf("read at = %q", got)
	}
	if page.Find(`[data-testid="machine-sensors-empty"]`).Length() != 0 {
		t.Error("empty state shown beside readings")
	}

	// A machine powered by hand has no sensors to read.
	manual := e.want(http.StatusCreated, "POST", "/api/v1/admin/machines", admin,
		map[string]any{"name": "node-2", "macs": []string{"52:54:00:ee:00:02"}, "power": map[string]any{"type": "manual"}})
	_, page = auditor.get("/admin/machines/" + manual["id"].(string))
	if got := page.Find(`[data-testid="machine-sensors-unsupported"]`).Text(); !strings.Contains(got, "this power driver has no sensors") {
		t.Errorf("page of a manual machine: sensors state %q", got)
	}
}
