-- +goose Up
-- A release may erase the machine's disks: the agent quick-wipes them before
-- the machine returns to ready.
ALTER TABLE machines ADD COLUMN release_erase BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE machines DROP COLUMN release_erase;
