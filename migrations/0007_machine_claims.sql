-- +goose Up
-- A power job (keyed by the event it answers) taken by one rack worker, so
-- that two workers on one database never both carry it out. A claim whose
-- lease has run out belongs to a worker that died mid-job; another worker
-- may take it over. The claim goes when its result is recorded.
CREATE TABLE machine_power_claims (
    event_id    TEXT PRIMARY KEY REFERENCES machine_events(id) ON DELETE CASCADE,
    machine_id  TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    claimed_at  TIMESTAMP NOT NULL,
    lease_until TIMESTAMP NOT NULL
);
CREATE INDEX machine_power_claims_machine ON machine_power_claims (machine_id);

-- The worker talking to a machine's BMC right now (a power command or a
-- power poll) and until when: one at a time per machine, across processes.
ALTER TABLE machines ADD COLUMN power_lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE machines ADD COLUMN power_lease_until TIMESTAMP;

-- +goose Down
ALTER TABLE machines DROP COLUMN power_lease_until;
ALTER TABLE machines DROP COLUMN power_lease_owner;
DROP INDEX machine_power_claims_machine;
DROP TABLE machine_power_claims;
