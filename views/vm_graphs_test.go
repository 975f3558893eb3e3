package views

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// TestVMGraphs draws the four charts from samples, as well-formed and
// labelled SVG with a line per series, split where samples are missing,
// and shows the empty state without samples.
func TestVMGraphs(t *testing.T) {
	to := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	from := to.Add(-time.Hour)
	var samples []GraphSample
	for i := 50; i >= 0; i-- {
		if i > 20 && i < 30 {
			continue // the VM was stopped: a gap
		}
		samples = append(samples, GraphSample{At: to.Add(-time.Duration(i) * time.Minute), CPUPercent: float64(i * 2),
			MemUsed: 300 << 20, MemAvailable: 1 << 30, DiskRead: 1500, DiskWrite: 10 << 20, NetRx: 100, NetTx: 50})
	}
	v := sampleDetail(owner(), "running", nil, nil)
	v.Graphs = NewVMGraphs(v.VM.ID, "hour", from, to, samples)
	doc, raw := render(t, VMDetail(v))
	mustHave(t, doc, testID("vm-graphs"))
	mustCount(t, doc, testID("graphs-empty"), 0)
	if got := mustHave(t, doc, testID("graph-range-current")).Text(); got != "Last hour" {
		t.Errorf("current range %q", got)
	}
	if href, _ := mustHave(t, doc, testID("graph-range-week")).Attr("href"); href != vmPath(v.VM.ID, "?range=week") {
		t.Errorf("week link %q", href)
	}
	for _, tc := range []struct {
		id, title string
		series    []string
		ylabel    string
	}{
		{"graph-cpu", "CPU (% of the VM's vCPUs)", []string{"CPU"}, "100 %"},
		{"graph-memory", "Memory (bytes)", []string{"used", "available"}, "1 GiB"},
		{"graph-disk", "Disk I/O (bytes/s)", []string{"read", "write"}, "10 MiB/s"},
		{"graph-net", "Network I/O (bytes/s)", []string{"received", "sent"}, "100 B/s"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			fig := mustHave(t, doc, testID(tc.id))
			svg := fig.Find("svg")
			i := strings.Index(raw, `data-testid="`+tc.id+`"`)
			start := strings.Index(raw[i:], "<svg") + i
			end := strings.Index(raw[start:], "</svg>") + start + len("</svg>")
			if err := xml.Unmarshal([]byte(raw[start:end]), new(struct{})); err != nil {
				t.Errorf("not well-formed XML: %v\n%s", err, raw[start:end])
			}
			if role, _ := svg.Attr("role"); role != "img" {
				t.Errorf("role %q", role)
			}
			if got := svg.Find("title").Text(); got != tc.title {
				t.Errorf("title %q, want %q", got, tc.title)
			}
			if desc := svg.Find("desc").Text(); !strings.Contains(desc, "over the last hour, 42 samples") {
				t.Errorf("desc %q", desc)
			}
			for _, name := range tc.series {
				if n := svg.Find(`polyline[data-series="` + name + `"]`).Length(); n != 2 {
					t.Errorf("series %s: %d lines, want 2 (split at the gap)", name, n)
				}
			}
			labels := svg.Find("g.grid text").Map(func(_ int, s *goquery.Selection) string { return s.Text() })
			if !contains(labels, tc.ylabel) || !contains(labels, "0 B") && !contains(labels, "0 B/s") && !contains(labels, "0 %") {
				t.Errorf("axis labels %q, want %q and a zero", labels, tc.ylabel)
			}
			if !contains(labels, "11:15") || !contains(labels, "11:45") {
				t.Errorf("time labels %q", labels)
			}
		})
	}

	v.Graphs = NewVMGraphs(v.VM.ID, "day", to.Add(-24*time.Hour), to, nil)
	doc, _ = render(t, VMDetail(v))
	if got := mustHave(t, doc, testID("graphs-empty")).Text(); !strings.Contains(got, "No samples yet") {
		t.Errorf("empty state %q", got)
	}
	mustCount(t, doc, "svg", 0)
	mustHave(t, doc, testID("graph-range-hour"))
}

// TestVMGraphsThin draws a day of minute samples from at most maxPoints
// means, and says how many samples there were.
func TestVMGraphsThin(t *testing.T) {
	to := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var samples []GraphSample
	for i := 1440; i >= 1; i-- {
		samples = append(samples, GraphSample{At: to.Add(-time.Duration(i) * time.Minute), CPUPercent: 40, MemAvailable: 1 << 30})
	}
	g := NewVMGraphs("vm", "day", to.Add(-24*time.Hour), to, samples)
	cpu := g.Charts[0]
	if len(cpu.Series[0].Lines) != 1 {
		t.Fatalf("%d lines", len(cpu.Series[0].Lines))
	}
	if n := strings.Count(cpu.Series[0].Lines[0], " ") + 1; n > maxPoints || n < maxPoints/2 {
		t.Errorf("%d points", n)
	}
	if !strings.Contains(cpu.Desc, "1440 samples") || !strings.Contains(cpu.Desc, "CPU latest 40 %, peak 40 %") {
		t.Errorf("desc %q", cpu.Desc)
	}
	labels := []string{}
	for _, x := range cpu.XTicks {
		labels = append(labels, x.Label)
	}
	if strings.Join(labels, " ") != "18:00 00:00 06:00 12:00" {
		t.Errorf("time labels %q", labels)
	}
}
