-- +goose Up
-- Placement keeps each process's copy of the hosts' capacity current
-- without re-reading every host per order. host_ledger.version counts the
-- changes to hosts other than reservations (edits, discovery, releases),
-- in the transaction that makes them, and each changed host row carries
-- the version that last changed it in placement_rev, so a process re-reads
-- just those rows; epoch counts hosts added and removed, after which a
-- process re-reads them all. Reservations change neither: each is one
-- guarded UPDATE whose result the process that made it keeps.
CREATE TABLE host_ledger (
    id      INTEGER PRIMARY KEY,
    version BIGINT NOT NULL,
    epoch   BIGINT NOT NULL
);
INSERT INTO host_ledger (id, version, epoch) VALUES (1, 0, 0);
ALTER TABLE hosts ADD COLUMN placement_rev BIGINT NOT NULL DEFAULT 0;
CREATE INDEX hosts_placement_rev ON hosts (placement_rev);

-- +goose Down
DROP INDEX hosts_placement_rev;
ALTER TABLE hosts DROP COLUMN placement_rev;
DROP TABLE host_ledger;
