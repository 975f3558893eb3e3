package views

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// GraphSample is one measurement of a VM for its graphs.
type GraphSample struct {
	At                    time.Time
	CPUPercent            float64
	MemUsed, MemAvailable float64 // bytes
	DiskRead, DiskWrite   float64 // bytes per second
	NetRx, NetTx          float64 // bytes per second
}

// VMGraphs are the charts of a VM's page over one range.
type VMGraphs struct {
	VMID   string
	Range  string // hour, day or week
	Charts []Chart
	// Empty is set when there is no sample in the range.
	Empty bool
}

// Chart is one server-drawn SVG line chart, in its own coordinates
// (chartW × chartH).
type Chart struct {
	ID, Title, Desc string
	YTicks, XTicks  []Tick
	Series          []ChartSeries
}

// ChartSeries is one line: its points as SVG polyline coordinates, split
// where samples are missing.
type ChartSeries struct {
	Name, Class string
	Lines       []string
}

// Tick is an axis mark at a position in chart coordinates.
type Tick struct {
	Pos   float64
	Label string
}

// Chart geometry: the plot area sits inside the margins.
const (
	chartW, chartH                     = 640, 180
	marginL, marginR, marginT, marginB = 72, 24, 10, 26
	plotW, plotH                       = chartW - marginL - marginR, chartH - marginT - marginB
)

func (Chart) ViewBox() string { return fmt.Sprintf("0 0 %d %d", chartW, chartH) }

func (Chart) PlotLeft() string   { return strconv.Itoa(marginL) }
func (Chart) PlotRight() string  { return strconv.Itoa(marginL + plotW) }
func (Chart) PlotTop() string    { return strconv.Itoa(marginT) }
func (Chart) PlotBottom() string { return strconv.Itoa(marginT + plotH) }
func (Chart) LabelY() string     { return strconv.Itoa(chartH - 6) }
func (Chart) LabelX() string     { return strconv.Itoa(marginL - 6) }

func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// NewVMGraphs draws the CPU, memory, disk and network charts of samples
// (oldest first) between from and to.
func NewVMGraphs(vmID, rng string, from, to time.Time, samples []GraphSample) VMGraphs {
	g := VMGraphs{VMID: vmID, Range: rng, Empty: len(samples) == 0}
	if g.Empty {
		return g
	}
	count := len(samples)
	samples = thin(samples, maxPoints)
	span := to.Sub(from)
	x := func(t time.Time) float64 { return marginL + float64(t.Sub(from))/float64(span)*plotW }
	xticks := timeTicks(from, to, x)
	gap := maxGap(samples)
	type line struct {
		name, class string
		value       func(GraphSample) float64
	}
	build := func(id, title, what string, unit func(float64) string, top float64, lines ...line) Chart {
		c := Chart{ID: "graph-" + id, Title: title, XTicks: xticks}
		peak := 0.0
		for _, l := range lines {
			for _, s := range samples {
				peak = max(peak, l.value(s))
			}
		}
		if top == 0 {
			top = niceBytes(peak)
		}
		y := func(v float64) float64 { return marginT + plotH - min(max(v, 0), top)/top*plotH }
		for i := 0; i <= 4; i++ {
			v := top * float64(i) / 4
			c.YTicks = append(c.YTicks, Tick{Pos: y(v), Label: unit(v)})
		}
		var desc []string
		for _, l := range lines {
			cs := ChartSeries{Name: l.name, Class: l.class}
			var pts []string
			lmax := 0.0
			for i, s := range samples {
				if i > 0 && s.At.Sub(samples[i-1].At) > gap && len(pts) > 0 {
					cs.Lines, pts = append(cs.Lines, strings.Join(pts, " ")), nil
				}
				pts = append(pts, coord(x(s.At))+","+coord(y(l.value(s))))
				lmax = max(lmax, l.value(s))
			}
			cs.Lines = append(cs.Lines, strings.Join(pts, " "))
			c.Series = append(c.Series, cs)
			desc = append(desc, fmt.Sprintf("%s latest %s, peak %s", l.name, unit(l.value(samples[len(samples)-1])), unit(lmax)))
		}
		c.Desc = fmt.Sprintf("%s over the last %s, %d samples: %s.", what, rng, count, strings.Join(desc, "; "))
		return c
	}
	g.Charts = []Chart{
		build("cpu", "CPU (% of the VM's vCPUs)", "CPU use", percent, 100, line{"CPU", "s-cpu", func(s GraphSample) float64 { return s.CPUPercent }}),
		build("memory", "Memory (bytes)", "Memory", bytesLabel, 0,
			line{"used", "s-used", func(s GraphSample) float64 { return s.MemUsed }},
			line{"available", "s-avail", func(s GraphSample) float64 { return s.MemAvailable }}),
		build("disk", "Disk I/O (bytes/s)", "Disk I/O", rateLabel, 0,
			line{"read", "s-read", func(s GraphSample) float64 { return s.DiskRead }},
			line{"write", "s-write", func(s GraphSample) float64 { return s.DiskWrite }}),
		build("net", "Network I/O (bytes/s)", "Network I/O", rateLabel, 0,
			line{"received", "s-rx", func(s GraphSample) float64 { return s.NetRx }},
			line{"sent", "s-tx", func(s GraphSample) float64 { return s.NetTx }}),
	}
	return g
}

// maxPoints bounds the points of a line: a day of minute samples is drawn
// from means of about five minutes, which the chart's width shows anyway.
const maxPoints = 320

// thin averages runs of consecutive samples so that at most limit remain.
func thin(samples []GraphSample, limit int) []GraphSample {
	if len(samples) <= limit {
		return samples
	}
	per := (len(samples) + limit - 1) / limit
	out := make([]GraphSample, 0, limit)
	for i := 0; i < len(samples); i += per {
		run := samples[i:min(i+per, len(samples))]
		m := GraphSample{At: run[len(run)-1].At}
		for _, s := range run {
			m.CPUPercent += s.CPUPercent
			m.MemUsed += s.MemUsed
			m.MemAvailable += s.MemAvailable
			m.DiskRead += s.DiskRead
			m.DiskWrite += s.DiskWrite
			m.NetRx += s.NetRx
			m.NetTx += s.NetTx
		}
		n := float64(len(run))
		m.CPUPercent, m.MemUsed, m.MemAvailable = m.CPUPercent/n, m.MemUsed/n, m.MemAvailable/n
		m.DiskRead, m.DiskWrite, m.NetRx, m.NetTx = m.DiskRead/n, m.DiskWrite/n, m.NetRx/n, m.NetTx/n
		out = append(out, m)
	}
	return out
}

// maxGap is how far apart two samples may be and still be joined: five
// times the usual interval.
func maxGap(samples []GraphSample) time.Duration {
	best := time.Duration(math.MaxInt64)
	for i := 1; i < len(samples); i++ {
		if d := samples[i].At.Sub(samples[i-1].At); d > 0 && d < best {
			best = d
		}
	}
	if best == time.Duration(math.MaxInt64) {
		return best
	}
	return 5 * best
}

// timeTicks marks the x axis: every 15 minutes for an hour, 6 hours for a
// day, a day for a week, in UTC.
func timeTicks(from, to time.Time, x func(time.Time) float64) []Tick {
	step, layout := 15*time.Minute, "15:04"
	switch span := to.Sub(from); {
	case span > 2*24*time.Hour:
		step, layout = 24*time.Hour, "Mon 2"
	case span > 2*time.Hour:
		step, layout = 6*time.Hour, "15:04"
	}
	var out []Tick
	for t := from.UTC().Truncate(step).Add(step); !t.After(to); t = t.Add(step) {
		out = append(out, Tick{Pos: x(t), Label: t.UTC().Format(layout)})
	}
	return out
}

// niceBytes rounds v up to 1, 2 or 5 times a power of ten of a binary
// unit (KiB, MiB…), so that the axis reads 10 MiB rather than 9.5 MiB.
func niceBytes(v float64) float64 {
	unit := 1.0
	for v/unit >= 1024 {
		unit *= 1024
	}
	return niceCeil(v/unit) * unit
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for nothing).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func percent(v float64) string { return trimFloat(math.Round(v*10)/10) + " %" }

// bytesLabel writes a byte count with a binary unit: 512 MiB, 1.5 GiB.
func bytesLabel(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return trimFloat(math.Round(v*10)/10) + " " + units[i]
}

func rateLabel(v float64) string { return bytesLabel(v) + "/s" }
