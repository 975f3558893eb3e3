-- +goose Up
CREATE TABLE hosts (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    uri                 TEXT NOT NULL,
    ssh_host_key        TEXT NOT NULL DEFAULT '',
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    maintenance         BOOLEAN NOT NULL DEFAULT FALSE,
    state               TEXT NOT NULL DEFAULT 'new',
    last_error          TEXT NOT NULL DEFAULT '',
    storage_pool        TEXT NOT NULL DEFAULT 'default',
    bridge              TEXT NOT NULL DEFAULT '',
    cpu_model           TEXT NOT NULL DEFAULT '',
    cores               BIGINT NOT NULL DEFAULT 0,
    memory_mib          BIGINT NOT NULL DEFAULT 0,
    disk_gib            BIGINT NOT NULL DEFAULT 0,
    disk_free_gib       BIGINT NOT NULL DEFAULT 0,
    cpu_ratio           DOUBLE PRECISION NOT NULL DEFAULT 4.0,
    memory_ratio        DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    disk_ratio          DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    reserved_cores      BIGINT NOT NULL DEFAULT 0,
    reserved_memory_mib BIGINT NOT NULL DEFAULT 0,
    reserved_disk_gib   BIGINT NOT NULL DEFAULT 0,
    alloc_vcpus         BIGINT NOT NULL DEFAULT 0,
    alloc_memory_mib    BIGINT NOT NULL DEFAULT 0,
    alloc_disk_gib      BIGINT NOT NULL DEFAULT 0,
    refreshed_at        TIMESTAMP,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);

CREATE TABLE subnets (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    cidr        TEXT NOT NULL,
    gateway     TEXT NOT NULL DEFAULT '',
    dns_servers TEXT NOT NULL DEFAULT '',
    range_start TEXT NOT NULL,
    range_end   TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

-- One row per address handed out; the primary key makes two VMs holding the
-- same address impossible, and the row stays until the VM is gone.
CREATE TABLE ip_addresses (
    subnet_id  TEXT NOT NULL REFERENCES subnets(id),
    address    TEXT NOT NULL,
    vm_id      TEXT NOT NULL UNIQUE REFERENCES vms(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subnet_id, address)
);

-- Kept without a foreign key so the column can be dropped again on SQLite;
-- hosts that hold VMs cannot be deleted (checked in code).
ALTER TABLE vms ADD COLUMN host_id TEXT;
ALTER TABLE vms ADD COLUMN mac TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN metadata_token TEXT NOT NULL DEFAULT '';
-- Work engine: a VM needs the provisioner while needs_work is true; a worker
-- holds it while lease_until is in the future.
ALTER TABLE vms ADD COLUMN needs_work BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE vms ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE vms ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE vms ADD COLUMN disk_erased_at TIMESTAMP;
CREATE INDEX vms_work ON vms (needs_work, next_attempt_at);
CREATE INDEX vms_host ON vms (host_id);
CREATE UNIQUE INDEX vms_metadata_token ON vms (metadata_token) WHERE metadata_token <> '';

ALTER TABLE operations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

-- Images without a boot loader are booted directly from a kernel and initrd.
ALTER TABLE images ADD COLUMN kernel_url TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN kernel_checksum TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN initrd_url TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN initrd_checksum TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE images DROP COLUMN initrd_checksum;
ALTER TABLE images DROP COLUMN initrd_url;
ALTER TABLE images DROP COLUMN kernel_checksum;
ALTER TABLE images DROP COLUMN kernel_url;
DROP INDEX vms_metadata_token;
DROP INDEX vms_host;
DROP INDEX vms_work;
ALTER TABLE operations DROP COLUMN attempts;
ALTER TABLE vms DROP COLUMN disk_erased_at;
ALTER TABLE vms DROP COLUMN lease_until;
ALTER TABLE vms DROP COLUMN lease_owner;
ALTER TABLE vms DROP COLUMN next_attempt_at;
ALTER TABLE vms DROP COLUMN attempts;
ALTER TABLE vms DROP COLUMN needs_work;
ALTER TABLE vms DROP COLUMN metadata_token;
ALTER TABLE vms DROP COLUMN mac;
ALTER TABLE vms DROP COLUMN host_id;
DROP TABLE ip_addresses;
DROP TABLE subnets;
DROP TABLE hosts;
