package portal

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
	"github.com/fibrixcloud/fibrix/views"
)

// fillGraphs adds the VM's charts over the range the page asks for
// (?range=hour|day|week; anything else shows the hour).
func (s *Server) fillGraphs(c *fiber.Ctx, v *views.VMDetailView) error {
	r, err := store.ParseMetricsRange(c.Query("range"))
	if err != nil {
		r = store.RangeHour
	}
	m, err := s.store.GetVMMetrics(c.UserContext(), who(c).User.Tenant(), v.VM.ID, r, time.Now())
	if err != nil {
		return err
	}
	samples := make([]views.GraphSample, 0, len(m.Samples))
	for _, x := range m.Samples {
		samples = append(samples, views.GraphSample{At: x.At, CPUPercent: x.CPUPercent,
			MemUsed: float64(x.MemUsedBytes), MemAvailable: float64(x.MemAvailableBytes),
			DiskRead: x.DiskReadBps, DiskWrite: x.DiskWriteBps, NetRx: x.NetRxBps, NetTx: x.NetTxBps})
	}
	v.Graphs = views.NewVMGraphs(m.VMID, string(r), m.From, m.To, samples)
	return nil
}
