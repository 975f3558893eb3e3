-- +goose Up
-- How many units a resource bills per hour: the GiB of a snapshot, 1 for a
-- VM or a port forward. A line's amount is units × hours × the hourly price
-- (capped per line by the monthly price).
ALTER TABLE usage_records ADD COLUMN units BIGINT NOT NULL DEFAULT 1;
ALTER TABLE usage_totals ADD COLUMN units BIGINT NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE usage_totals DROP COLUMN units;
ALTER TABLE usage_records DROP COLUMN units;
