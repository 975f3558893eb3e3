-- +goose Up
-- A VM ordered from a snapshot: its disk is a copy of that snapshot's
-- volume instead of an overlay of its image. Empty for a VM from an image.
ALTER TABLE vms ADD COLUMN source_snapshot_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE vms DROP COLUMN source_snapshot_id;
