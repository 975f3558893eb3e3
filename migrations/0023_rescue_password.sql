-- +goose Up
-- Console rescue: the SHA-512 crypt hash of a password the customer had
-- reset (shown to them once, never stored in clear), and how many times it
-- was reset. The metadata service gives the guest a new instance-id for each
-- generation, so cloud-init sets the password once more on the next boot.
ALTER TABLE vms ADD COLUMN rescue_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN rescue_password_hash TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE vms DROP COLUMN rescue_password_hash;
ALTER TABLE vms DROP COLUMN rescue_generation;
