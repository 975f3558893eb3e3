package main

import (
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// e2eGraphs makes the guest busy and waits for the sampler to see it: a
// sample with CPU well above idle in the API, and the VM page drawing its
// charts from the samples. The busy loop ends by itself within a minute,
// or when the step is done.
func e2eGraphs(t *testing.T, g *e2eGuest) {
	g.ssh(t, `nohup timeout 60 sh -c 'while :; do :; done' >/dev/null 2>&1 &`, time.Minute)
	defer g.ssh(t, `pkill -x timeout; true`, time.Minute)
	start := time.Now()
	type sample struct {
		At         time.Time `json:"at"`
		CPUPercent float64   `json:"cpu_percent"`
		MemUsed    int64     `json:"memory_used_bytes"`
		MemAvail   int64     `json:"memory_available_bytes"`
	}
	var m struct {
		VMID    string   `json:"vm_id"`
		Range   string   `json:"range"`
		VCPUs   int      `json:"vcpus"`
		Samples []sample `json:"samples"`
	}
	var busy sample
	for deadline := time.Now().Add(90 * time.Second); busy.CPUPercent <= 50; time.Sleep(2 * time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("no sample above 50%% CPU within 90 s of making the guest busy: %+v", m.Samples)
		}
		g.cust.must("GET", "/vms/"+g.vmID+"/metrics?range=hour", nil, &m, 200)
		for _, s := range m.Samples {
			if s.At.After(start) && s.CPUPercent > busy.CPUPercent {
				busy = s
			}
		}
	}
	t.Logf("busy guest sampled at %.0f%% of %d vCPU, memory %d of %d bytes, %s after the loop started (%d samples in the hour)",
		busy.CPUPercent, m.VCPUs, busy.MemUsed, busy.MemAvail, time.Since(start).Round(time.Second), len(m.Samples))
	if m.VMID != g.vmID || m.Range != "hour" || busy.MemAvail <= 0 || busy.MemUsed <= 0 || busy.MemUsed > busy.MemAvail {
		t.Errorf("metrics %+v, busiest sample %+v", m, busy)
	}
	if code := g.cust.call("GET", "/vms/"+g.vmID+"/metrics?range=month", nil, nil); code != http.StatusUnprocessableEntity {
		t.Errorf("range=month: %d, want 422", code)
	}

	// The page, with the customer's session as its cookie.
	req, _ := http.NewRequest("GET", g.cust.base+"/vms/"+g.vmID, nil)
	req.AddCookie(&http.Cookie{Name: "fibrix_session", Value: g.cust.token})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	page := string(body)
	if res.StatusCode != 200 || !strings.Contains(page, `data-testid="vm-graphs"`) {
		t.Fatalf("VM page: %d, no graphs:\n%s", res.StatusCode, lastLines(page, 40))
	}
	if strings.Contains(page, `data-testid="graphs-empty"`) {
		t.Fatal("the VM page says there are no samples yet")
	}
	i := strings.Index(page, `<figure class="chart" data-testid="graph-cpu"`)
	j := strings.Index(page[max(i, 0):], "</svg>")
	if i < 0 || j < 0 {
		t.Fatal("no CPU chart on the VM page")
	}
	svg := page[strings.Index(page[i:], "<svg")+i : i+j+len("</svg>")]
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Errorf("the CPU chart is not well-formed: %v", err)
	}
	if !strings.Contains(svg, `<polyline class="series s-cpu"`) || strings.Count(svg, ",") < 2 {
		t.Errorf("the CPU chart draws no line:\n%s", svg)
	}
}
