package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func machineNow(t *testing.T, s *store.Store, id string) store.Machine {
	t.Helper()
	d, err := s.GetMachine(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d.Machine
}

// TestRecordSensors checks readings are recorded only under the worker's
// lease, cleaned and bounded, that the lease stays held until the power
// state ends the poll, and that refused readings, a poll without a sensor
// read and a failed record all leave the previous readings and their time.
func TestRecordSensors(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := enlist(t, s, "node-1", "52:54:00:00:07:01")
		if m.SensorsReadAt != nil || m.SensorReadings() != nil {
			t.Fatalf("new machine has readings %q at %v", m.Sensors, m.SensorsReadAt)
		}
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-a", time.Hour); err != nil || !ok {
			t.Fatalf("lease = %v, %v", ok, err)
		}
		long := strings.Repeat("x", 100)
		in := []store.SensorReading{
			{Name: "  CPU Temp\n", Type: "Temperature", Value: 45, Unit: "degrees C", Status: "ok"},
			{Name: "Fan\x001\tA", Type: "Fan", Value: 3120.5, Unit: "RPM", Status: " cr "},
			{Name: long, Type: long, Value: -1.25, Unit: long, Status: long},
			{Name: "PSU\xff Status", Type: "Power Supply", Value: 0, Unit: "", Status: "0x0100"},
		}
		if err := s.RecordSensors(ctx, m.ID, "worker-a", in); err != nil {
			t.Fatalf("RecordSensors: %v", err)
		}
		want := []store.SensorReading{
			{Name: "CPU Temp", Type: "Temperature", Value: 45, Unit: "degrees C", Status: "ok"},
			{Name: "Fan 1 A", Type: "Fan", Value: 3120.5, Unit: "RPM", Status: "cr"},
			{Name: strings.Repeat("x", 63) + "…", Type: strings.Repeat("x", 47) + "…", Value: -1.25,
				Unit: strings.Repeat("x", 31) + "…", Status: strings.Repeat("x", 15) + "…"},
			{Name: "PSU? Status", Type: "Power Supply", Value: 0, Unit: "", Status: "0x0100"},
		}
		got := machineNow(t, s, m.ID)
		if diff := cmp.Diff(want, got.SensorReadings()); diff != "" {
			t.Errorf("readings (-want +got):\n%s", diff)
		}
		if got.SensorsReadAt == nil {
			t.Fatal("readings recorded without a time")
		}
		readAt := *got.SensorsReadAt
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-b", time.Hour); err != nil || ok {
			t.Errorf("lease by another worker after the readings = %v, %v; want still held", ok, err)
		}

		unchanged := func(what string) {
			t.Helper()
			cur := machineNow(t, s, m.ID)
			if diff := cmp.Diff(want, cur.SensorReadings()); diff != "" {
				t.Errorf("%s changed the readings (-want +got):\n%s", what, diff)
			}
			if cur.SensorsReadAt == nil || !cur.SensorsReadAt.Equal(readAt) {
				t.Errorf("%s changed the readings' time to %v; want %v", what, cur.SensorsReadAt, readAt)
			}
		}
		tooMany := make([]store.SensorReading, store.MaxSensors+1)
		for i := range tooMany {
			tooMany[i] = store.SensorReading{Name: fmt.Sprintf("Temp %d", i), Value: 1}
		}
		one := []store.SensorReading{{Name: "CPU Temp", Value: 50}}
		for _, tc := range []struct {
			name            string
			machine, owner  string
			readings        []store.SensorReading
			wantKind        error
			wantMsgContains string
		}{
			{"no owner", m.ID, "", one, store.ErrInvalid, "owner"},
			{"too many sensors", m.ID, "worker-a", tooMany, store.ErrInvalid, "at most 200"},
			{"a sensor without a name", m.ID, "worker-a", []store.SensorReading{{Name: "A", Value: 1}, {Name: " \t ", Value: 2}}, store.ErrInvalid, "sensor reading 2 has no name"},
			{"not a number", m.ID, "worker-a", []store.SensorReading{{Name: "A", Value: math.NaN()}}, store.ErrInvalid, `"A" has no finite value`},
			{"infinite", m.ID, "worker-a", []store.SensorReading{{Name: "B", Value: math.Inf(-1)}}, store.ErrInvalid, `"B" has no finite value`},
			{"worker without the lease", m.ID, "worker-b", one, store.ErrConflict, "claim"},
			{"unknown machine", "no-such-machine", "worker-a", one, store.ErrNotFound, "machine not found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := s.RecordSensors(ctx, tc.machine, tc.owner, tc.readings)
				if !errors.Is(err, tc.wantKind) || !strings.Contains(err.Error(), tc.wantMsgContains) {
					t.Errorf("RecordSensors = %v; want %v saying %q", err, tc.wantKind, tc.wantMsgContains)
				}
				unchanged(tc.name)
			})
		}

		// A poll whose sensor read failed records only the power state.
		if _, err := s.RecordPowerState(ctx, m.ID, "worker-a", "on"); err != nil {
			t.Fatal(err)
		}
		unchanged("a poll without readings")
		if cur := machineNow(t, s, m.ID); cur.PowerState != "on" || cur.PowerCheckedAt == nil {
			t.Errorf("power state = %q checked at %v; want on, checked", cur.PowerState, cur.PowerCheckedAt)
		}
		// The lease ended with the poll: readings without it are refused.
		if err := s.RecordSensors(ctx, m.ID, "worker-a", one); !errors.Is(err, store.ErrConflict) {
			t.Errorf("readings after the lease ended = %v; want a conflict", err)
		}
		unchanged("readings after the lease ended")

		// Exactly the bound is kept; an empty list is a BMC without sensors.
		if ok, err := s.LeaseMachine(ctx, m.ID, "worker-b", time.Hour); err != nil || !ok {
			t.Fatalf("lease = %v, %v", ok, err)
		}
		if err := s.RecordSensors(ctx, m.ID, "worker-b", tooMany[:store.MaxSensors]); err != nil {
			t.Fatalf("RecordSensors with %d readings: %v", store.MaxSensors, err)
		}
		if n := len(machineNow(t, s, m.ID).SensorReadings()); n != store.MaxSensors {
			t.Errorf("kept %d readings; want %d", n, store.MaxSensors)
		}
		if err := s.RecordSensors(ctx, m.ID, "worker-b", nil); err != nil {
			t.Fatalf("RecordSensors with none: %v", err)
		}
		if cur := machineNow(t, s, m.ID); cur.SensorReadings() == nil || len(cur.SensorReadings()) != 0 || cur.SensorsReadAt == nil {
			t.Errorf("readings of a BMC without sensors = %q at %v; want an empty list, read", cur.Sensors, cur.SensorsReadAt)
		}
		if _, err := s.RecordPowerState(ctx, m.ID, "worker-b", ""); err != nil {
			t.Fatal(err)
		}

		// Another power driver has other sensors, or none: the old readings go.
		if err := s.RecordSensors(ctx, m.ID, "worker-b", nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("readings without a lease = %v; want a conflict", err)
		}
		if _, err := s.UpdateMachine(ctx, staffActor, m.ID, store.MachineInput{Name: "node-1", PowerType: store.PowerManual}); err != nil {
			t.Fatal(err)
		}
		if cur := machineNow(t, s, m.ID); cur.Sensors != "" || cur.SensorsReadAt != nil {
			t.Errorf("readings after a power type change = %q at %v; want none", cur.Sensors, cur.SensorsReadAt)
		}
	})
}
