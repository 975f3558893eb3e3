package portal

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

type vmMetricsJSON struct {
	VMID        string         `json:"vm_id"`
	Range       string         `json:"range"`
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	StepSeconds int64          `json:"step_seconds"`
	VCPUs       int64          `json:"vcpus"`
	Samples     []vmSampleJSON `json:"samples"`
}

type vmSampleJSON struct {
	At                   time.Time `json:"at"`
	CPUPercent           float64   `json:"cpu_percent"`
	MemoryUsedBytes      int64     `json:"memory_used_bytes"`
	MemoryAvailableBytes int64     `json:"memory_available_bytes"`
	DiskReadBps          float64   `json:"disk_read_bytes_per_second"`
	DiskWriteBps         float64   `json:"disk_write_bytes_per_second"`
	NetRxBps             float64   `json:"net_rx_bytes_per_second"`
	NetTxBps             float64   `json:"net_tx_bytes_per_second"`
}

// apiVMMetrics returns the VM's CPU, memory, disk and network samples over
// the last hour, day or week.
func (s *Server) apiVMMetrics(c *fiber.Ctx) error {
	r, err := store.ParseMetricsRange(c.Query("range"))
	if err != nil {
		return err
	}
	m, err := s.store.GetVMMetrics(c.UserContext(), who(c).User.Tenant(), c.Params("id"), r, time.Now())
	if err != nil {
		return err
	}
	out := vmMetricsJSON{VMID: m.VMID, Range: string(m.Range), From: m.From, To: m.To, StepSeconds: int64(m.Step / time.Second),
		VCPUs: m.VCPUs, Samples: make([]vmSampleJSON, 0, len(m.Samples))}
	for _, x := range m.Samples {
		out.Samples = append(out.Samples, vmSampleJSON{At: x.At, CPUPercent: x.CPUPercent, MemoryUsedBytes: x.MemUsedBytes,
			MemoryAvailableBytes: x.MemAvailableBytes, DiskReadBps: x.DiskReadBps, DiskWriteBps: x.DiskWriteBps,
			NetRxBps: x.NetRxBps, NetTxBps: x.NetTxBps})
	}
	return c.JSON(out)
}
