package power

import (
	"testing"

	"github.com/fibrixcloud/fibrix/provisioner/ipmisimtest"
)

// The real peer for the IPMI driver: OpenIPMI's ipmi_sim, one process per
// BMC on its own loopback port, cross-checked with ipmitool.

const (
	simUser     = ipmisimtest.User
	simPassword = ipmisimtest.Password
)

// startSim starts a BMC; with sensors, its SDR repository holds one
// temperature sensor reading 45.
func startSim(t testing.TB, name string, sensors bool) *ipmisimtest.BMC {
	t.Helper()
	var opt ipmisimtest.Options
	if sensors {
		opt.Emu = ipmisimtest.CPUTempSensor(45)
	}
	return ipmisimtest.Start(t, name, opt)
}
