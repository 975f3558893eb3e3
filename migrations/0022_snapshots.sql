-- +goose Up
-- VM snapshots: a full, self-contained copy of a VM's disk volume, kept in
-- the storage pool of the VM's host. A snapshot holds quota (count and
-- GiB) from the moment it is asked for until its volume is gone.
-- quota_gib is what it counts against the quota: the VM's disk size while
-- it is being taken, its real size (rounded up to a GiB) once ready.
CREATE TABLE snapshots (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    vm_id       TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    host_id     TEXT NOT NULL DEFAULT '',
    volume      TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL DEFAULT 0,
    quota_gib   BIGINT NOT NULL DEFAULT 0,
    consistency TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    ready_at    TIMESTAMP,
    deleted_at  TIMESTAMP
);
CREATE INDEX snapshots_tenant ON snapshots (tenant_id) WHERE deleted_at IS NULL;
CREATE INDEX snapshots_vm ON snapshots (vm_id);
CREATE UNIQUE INDEX snapshots_vm_name ON snapshots (vm_id, name) WHERE deleted_at IS NULL;

ALTER TABLE tenants ADD COLUMN quota_snapshots BIGINT NOT NULL DEFAULT 5;
ALTER TABLE tenants ADD COLUMN quota_snapshot_gib BIGINT NOT NULL DEFAULT 50;
ALTER TABLE quota_defaults ADD COLUMN snapshots BIGINT NOT NULL DEFAULT 5;
ALTER TABLE quota_defaults ADD COLUMN snapshot_gib BIGINT NOT NULL DEFAULT 50;

-- The snapshot a snapshot, restore or snapshot-delete operation works on.
ALTER TABLE operations ADD COLUMN snapshot_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE operations DROP COLUMN snapshot_id;
ALTER TABLE quota_defaults DROP COLUMN snapshot_gib;
ALTER TABLE quota_defaults DROP COLUMN snapshots;
ALTER TABLE tenants DROP COLUMN quota_snapshot_gib;
ALTER TABLE tenants DROP COLUMN quota_snapshots;
DROP TABLE snapshots;
