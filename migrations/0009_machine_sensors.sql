-- +goose Up
-- The BMC's sensor readings from the latest power poll that read them, as a
-- JSON list of {name, type, value, unit, status}; sensors_read_at is when
-- (NULL until first read). A failed read leaves both as they were.
ALTER TABLE machines ADD COLUMN sensors TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN sensors_read_at TIMESTAMP;

-- +goose Down
ALTER TABLE machines DROP COLUMN sensors_read_at;
ALTER TABLE machines DROP COLUMN sensors;
