package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"

	"gorm.io/gorm"
)

// SensorReading is one BMC sensor as the machine page shows it.
type SensorReading struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"` // "Temperature", "Fan", "Voltage", …
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`   // "degrees C", "RPM", …; empty for discrete sensors
	Status string  `json:"status"` // "ok", "nc", "cr", "nr", "N/A", …
}

// Bounds on what RecordSensors keeps: a BMC is not trusted to send short
// names or a sane number of records.
const (
	MaxSensors      = 200
	maxSensorName   = 64
	maxSensorType   = 48
	maxSensorUnit   = 32
	maxSensorStatus = 16
)

// SensorPowerTypes are the power drivers that read sensors from the BMC.
func SensorPowerTypes() []string { return []string{PowerIPMI} }

// SensorReadings decodes the machine's latest sensor readings; nil when
// none were ever read (SensorsReadAt is nil then too).
func (m Machine) SensorReadings() []SensorReading {
	if m.Sensors == "" {
		return nil
	}
	var out []SensorReading
	if err := json.Unmarshal([]byte(m.Sensors), &out); err != nil {
		return nil
	}
	return out
}

// sensorText makes one text field of a reading storable and short:
// valid UTF-8, no control characters, trimmed, at most n runes (the last
// one an ellipsis when cut).
func sensorText(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = strings.TrimSpace(string(r[:n-1])) + "…"
	}
	return s
}

// checkSensors validates and normalises readings: at most MaxSensors, each
// named, with a finite value; text fields cleaned and length-capped.
func checkSensors(in []SensorReading) ([]SensorReading, error) {
	if len(in) > MaxSensors {
		return nil, E(ErrInvalid, "sensors", fmt.Sprintf("%d sensor readings are too many; at most %d are kept", len(in), MaxSensors))
	}
	out := make([]SensorReading, len(in))
	for i, r := range in {
		r.Name = sensorText(r.Name, maxSensorName)
		if r.Name == "" {
			return nil, E(ErrInvalid, "sensors", fmt.Sprintf("sensor reading %d has no name", i+1))
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return nil, E(ErrInvalid, "sensors", fmt.Sprintf("sensor %q has no finite value", r.Name))
		}
		r.Type = sensorText(r.Type, maxSensorType)
		r.Unit = sensorText(r.Unit, maxSensorUnit)
		r.Status = sensorText(r.Status, maxSensorStatus)
		out[i] = r
	}
	return out, nil
}

// RecordSensors stores the sensor readings owner took under its power lease
// on the machine (LeaseMachine), replacing the previous ones, and when they
// were read. It leaves the lease held: RecordPowerState ends the poll.
// Readings that fail validation are refused with ErrInvalid, a worker whose
// lease was taken over gets ErrConflict, and neither changes anything. An
// empty list is a BMC without sensors.
func (s *Store) RecordSensors(ctx context.Context, machineID, owner string, readings []SensorReading) error {
	if owner == "" {
		return E(ErrInvalid, "", "sensor readings need the owner of the machine's lease")
	}
	rs, err := checkSensors(readings)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("encode sensor readings: %w", err)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := takeMachine(tx, machineID)
		if err != nil {
			return err
		}
		res := tx.Model(&Machine{}).Where("id = ? AND power_lease_owner = ?", cur.ID, owner).
			UpdateColumns(map[string]any{"sensors": string(b), "sensors_read_at": now()})
		if res.Error != nil {
			return fmt.Errorf("record sensor readings: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return errClaimLost()
		}
		return nil
	})
}
