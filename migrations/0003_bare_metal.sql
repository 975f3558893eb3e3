-- +goose Up
-- Networks the boot stack serves (DHCP answers only here, never elsewhere).
CREATE TABLE boot_subnets (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    cidr          TEXT NOT NULL,
    gateway       TEXT NOT NULL DEFAULT '',
    dns_servers   TEXT NOT NULL DEFAULT '',
    dynamic_start TEXT NOT NULL DEFAULT '',
    dynamic_end   TEXT NOT NULL DEFAULT '',
    lease_seconds INTEGER NOT NULL DEFAULT 3600,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- Fixed addresses for known MACs.
CREATE TABLE dhcp_reservations (
    mac        TEXT PRIMARY KEY,
    subnet_id  TEXT NOT NULL REFERENCES boot_subnets(id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    hostname   TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    UNIQUE (subnet_id, ip)
);

-- Durable leases: one address per MAC per subnet, one MAC per address.
CREATE TABLE dhcp_leases (
    subnet_id  TEXT NOT NULL REFERENCES boot_subnets(id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    mac        TEXT NOT NULL,
    hostname   TEXT NOT NULL DEFAULT '',
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subnet_id, ip),
    UNIQUE (subnet_id, mac)
);

CREATE TABLE machines (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL DEFAULT 'new',
    state_changed_at TIMESTAMP NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    power_type       TEXT NOT NULL DEFAULT 'manual',
    -- Driver parameters without secrets, as JSON (address, port, user, …).
    power_params     TEXT NOT NULL DEFAULT '{}',
    -- The BMC password, encrypted (AES-GCM); never shown again after entry.
    power_secret     TEXT NOT NULL DEFAULT '',
    power_state      TEXT NOT NULL DEFAULT 'unknown',
    power_checked_at TIMESTAMP,
    cpu_model        TEXT NOT NULL DEFAULT '',
    cores            BIGINT NOT NULL DEFAULT 0,
    memory_mib       BIGINT NOT NULL DEFAULT 0,
    -- What the commissioning agent reported, as JSON.
    inventory        TEXT NOT NULL DEFAULT '',
    -- One-time token the boot environment reports with (hash only).
    agent_token_hash TEXT NOT NULL DEFAULT '',
    deploy_image_id  TEXT NOT NULL DEFAULT '',
    deploy_disk      TEXT NOT NULL DEFAULT '',
    ssh_host_key     TEXT NOT NULL DEFAULT '',
    host_id          TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE machine_macs (
    mac        TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    boot       BOOLEAN NOT NULL DEFAULT FALSE
);

-- Every transition and power command, with its reason.
CREATE TABLE machine_events (
    id         TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    at         TIMESTAMP NOT NULL,
    kind       TEXT NOT NULL,
    from_state TEXT NOT NULL DEFAULT '',
    to_state   TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX machine_events_machine ON machine_events (machine_id, at);

-- MACs that PXE-booted on a managed subnet without being enlisted.
CREATE TABLE discovered_macs (
    mac          TEXT PRIMARY KEY,
    subnet_id    TEXT NOT NULL DEFAULT '',
    vendor_class TEXT NOT NULL DEFAULT '',
    arch         INTEGER NOT NULL DEFAULT -1,
    user_class   TEXT NOT NULL DEFAULT '',
    first_seen   TIMESTAMP NOT NULL,
    last_seen    TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE discovered_macs;
DROP TABLE machine_events;
DROP TABLE machine_macs;
DROP TABLE machines;
DROP TABLE dhcp_leases;
DROP TABLE dhcp_reservations;
DROP TABLE boot_subnets;
