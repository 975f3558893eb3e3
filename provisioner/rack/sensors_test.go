package rack_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/ipmisimtest"
	"github.com/fibrixcloud/fibrix/provisioner/power"
	"github.com/fibrixcloud/fibrix/provisioner/rack"
	"github.com/fibrixcloud/fibrix/provisioner/secret"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

// TestWorkerIPMISensors polls a machine behind a real BMC (ipmi_sim) whose
// SDR repository holds a CPU temperature sensor reading 45: the poll
// records the power state and the reading, and frees the machine.
func TestWorkerIPMISensors(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		bmc := startBMCWith(t, "bmc1", ipmisimtest.CPUTempSensor(45))
		if out := bmc.Ipmitool(t, "sdr", "list"); !strings.Contains(out, "CPU Temp") || !strings.Contains(out, "45 degrees C") {
			t.Fatalf("ipmitool sdr list = %q; want CPU Temp at 45 degrees C", out)
		}
		box, err := secret.SharedBox(ctx, s, secret.BMCKeySetting)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := box.Seal(simPassword)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.EnlistMachine(ctx, staff, store.MachineInput{Name: "node-1", MACs: []string{"52:54:00:aa:05:01"},
			PowerType: store.PowerIPMI, PowerParams: bmc.params(), PowerSecretSealed: sealed})
		if err != nil {
			t.Fatal(err)
		}
		if m.SensorsReadAt != nil || m.SensorReadings() != nil {
			t.Fatalf("a new machine has sensor readings: %q at %v", m.Sensors, m.SensorsReadAt)
		}

		w := rack.NewWorker(s, rack.Config{WorkerID: "worker-1", PollInterval: time.Nanosecond}, nil)
		if err := w.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		d, err := s.GetMachine(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.SensorReading{{Name: "CPU Temp", Type: "Temperature", Value: 45, Unit: "degrees C", Status: "ok"}}
		if diff := cmp.Diff(want, d.SensorReadings()); diff != "" {
			t.Errorf("sensor readings after a poll (-want +got):\n%s", diff)
		}
		if d.SensorsReadAt == nil || d.PowerCheckedAt == nil {
			t.Errorf("sensors read at %v, power checked at %v; want both set", d.SensorsReadAt, d.PowerCheckedAt)
		}
		if d.PowerState != "off" {
			t.Errorf("power state = %q; want off", d.PowerState)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-2", time.Minute); err != nil || !ok {
			t.Errorf("lease after the poll = %v, %v; want the machine free", ok, err)
		}
	})
}

// sensorBMC stands in for a BMC whose sensor reads can be made to fail,
// beside the real-BMC test above: a failed read must not stop the poll.
type sensorBMC struct {
	mu      sync.Mutex
	on      bool
	sensors []power.Sensor
	fail    error
}

type sensorDriver struct{ b *sensorBMC }

func (d sensorDriver) PowerState(ctx context.Context) (power.State, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.b.on {
		return power.On, nil
	}
	return power.Off, nil
}

func (d sensorDriver) Sensors(ctx context.Context) ([]power.Sensor, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.b.fail != nil {
		return nil, d.b.fail
	}
	return d.b.sensors, nil
}

func (b *sensorBMC) set(f func(b *sensorBMC)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

// TestWorkerSensorFailure checks a poll whose sensor read fails still
// records the power state and keeps the previous readings with their time,
// and that a BMC with more sensors than are kept has the first ones kept.
func TestWorkerSensorFailure(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlistIPMI(t, s, "node-1", "52:54:00:aa:06:01", "bmc-1")
		b := &sensorBMC{sensors: []power.Sensor{{Name: "Fan 1", Type: "Fan", Value: 3000, Unit: "RPM", Status: "ok"}}}
		w := rack.NewWorker(s, rack.Config{WorkerID: "worker-1", PollInterval: time.Nanosecond,
			NewDriver: func(power.Config, *slog.Logger) (power.Stater, error) { return sensorDriver{b}, nil }}, nil)
		machine := func() store.Machine {
			t.Helper()
			if err := w.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			d, err := s.GetMachine(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			return d.Machine
		}

		first := machine()
		fan := []store.SensorReading{{Name: "Fan 1", Type: "Fan", Value: 3000, Unit: "RPM", Status: "ok"}}
		if diff := cmp.Diff(fan, first.SensorReadings()); diff != "" || first.SensorsReadAt == nil {
			t.Fatalf("readings after the first poll at %v (-want +got):\n%s", first.SensorsReadAt, diff)
		}

		b.set(func(b *sensorBMC) { b.on, b.fail = true, errors.New("ipmi read sensors: no answer") })
		second := machine()
		if second.PowerState != "on" {
			t.Errorf("power state after a poll whose sensor read failed = %q; want on", second.PowerState)
		}
		if diff := cmp.Diff(fan, second.SensorReadings()); diff != "" {
			t.Errorf("readings after a failed read (-want +got):\n%s", diff)
		}
		if second.SensorsReadAt == nil || !second.SensorsReadAt.Equal(*first.SensorsReadAt) {
			t.Errorf("readings time after a failed read = %v; want the first read's %v", second.SensorsReadAt, first.SensorsReadAt)
		}
		if want := []string{"power_drift: power is on but was off with no command to change it"}; !cmp.Equal(want, powerEvents(t, s, m.ID)) {
			t.Errorf("events = %q; want %q", powerEvents(t, s, m.ID), want)
		}

		many := make([]power.Sensor, store.MaxSensors+50)
		for i := range many {
			many[i] = power.Sensor{Name: fmt.Sprintf("Temp %d", i+1), Type: "Temperature", Value: float64(i), Unit: "degrees C", Status: "ok"}
		}
		b.set(func(b *sensorBMC) { b.fail, b.sensors = nil, many })
		third := machine()
		got := third.SensorReadings()
		if len(got) != store.MaxSensors || got[0].Name != "Temp 1" || got[len(got)-1].Name != fmt.Sprintf("Temp %d", store.MaxSensors) {
			t.Errorf("a BMC with %d sensors: kept %d; want the first %d", len(many), len(got), store.MaxSensors)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-2", time.Minute); err != nil || !ok {
			t.Errorf("lease after the polls = %v, %v; want the machine free", ok, err)
		}
	})
}
