package portal

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestAPIVMMetrics serves a VM's samples per range to its tenant (readers
// included), refuses a bad range with 422 and other tenants with 404, and
// draws the samples on the VM page.
func TestAPIVMMetrics(t *testing.T) {
	e := newEnv(t)
	owner := e.customer("Graphs", "g@graphs.example")
	rival := e.customer("Rival", "r@rival.example")
	ro := e.member(owner, "ro@graphs.example", store.RoleReadOnly)
	id, _ := reverseVM(t, e, owner, "web")
	path := "/api/v1/vms/" + id + "/metrics"

	empty := e.want(http.StatusOK, "GET", path, owner, nil)
	if s, ok := empty["samples"].([]any); !ok || len(s) != 0 || empty["range"] != "hour" || empty["step_seconds"] != 0.0 {
		t.Errorf("no samples yet: %v", empty)
	}
	now := time.Now().UTC()
	var samples []store.VMSample
	for i := 3; i >= 1; i-- {
		samples = append(samples, store.VMSample{VMID: id, At: now.Add(-time.Duration(i) * time.Minute), CPUPercent: 90,
			MemUsedBytes: 200 << 20, MemAvailableBytes: 512 << 20, DiskReadBps: 4096, DiskWriteBps: 1024, NetRxBps: 300, NetTxBps: 200})
	}
	samples = append(samples, store.VMSample{VMID: id, At: now.Add(-2 * time.Hour), CPUPercent: 10})
	if _, err := e.st.RecordVMSamples(context.Background(), samples); err != nil {
		t.Fatal(err)
	}

	hour := e.want(http.StatusOK, "GET", path+"?range=hour", ro, nil)
	got := items2(hour["samples"])
	if len(got) != 3 || hour["vm_id"] != id || hour["vcpus"] != 1.0 || hour["from"] == nil || hour["to"] == nil {
		t.Fatalf("hour: %v", hour)
	}
	want := map[string]any{"cpu_percent": 90.0, "memory_used_bytes": float64(200 << 20), "memory_available_bytes": float64(512 << 20),
		"disk_read_bytes_per_second": 4096.0, "disk_write_bytes_per_second": 1024.0, "net_rx_bytes_per_second": 300.0, "net_tx_bytes_per_second": 200.0}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v", k, got[0][k], v)
		}
	}
	if at, err := time.Parse(time.RFC3339, got[0]["at"].(string)); err != nil || !at.Equal(now.Add(-3*time.Minute).Truncate(time.Second)) {
		t.Errorf("at %v %v", got[0]["at"], err)
	}
	if day := e.want(http.StatusOK, "GET", path+"?range=day", owner, nil); len(items2(day["samples"])) != 4 {
		t.Errorf("day: %v", day["samples"])
	}
	if week := e.want(http.StatusOK, "GET", path+"?range=week", owner, nil); week["step_seconds"] != 600.0 {
		t.Errorf("week: %v", week)
	}
	e.wantErr(http.StatusUnprocessableEntity, "invalid", "range", "GET", path+"?range=month", owner, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", path, rival, nil)
	e.wantErr(http.StatusNotFound, "not_found", "", "GET", "/api/v1/vms/no-such-vm/metrics", owner, nil)

	b := e.browser()
	b.cookies[sessionCookie] = owner
	res, doc := b.get("/vms/" + id + "?range=hour")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("VM page: %d", res.StatusCode)
	}
	if doc.Find(`[data-testid=graphs-empty]`).Length() != 0 || doc.Find(`[data-testid=graph-cpu] polyline[data-series=CPU]`).Length() != 1 {
		t.Errorf("the VM page draws no CPU line")
	}
	b.cookies[sessionCookie] = rival
	if res, _ := b.get("/vms/" + id); res.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's VM page: %d", res.StatusCode)
	}
}

func items2(v any) []map[string]any {
	var out []map[string]any
	for _, x := range v.([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}
