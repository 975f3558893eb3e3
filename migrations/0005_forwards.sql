-- +goose Up
-- What a customer publishes through the forwarder on the ISP's public address.
ALTER TABLE vms ADD COLUMN expose_http BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE vms ADD COLUMN expose_https BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE vms ADD COLUMN proxy_protocol BOOLEAN NOT NULL DEFAULT FALSE;

-- TCP port forwards: public_port on the ISP's address → the VM's target_port.
-- UNIQUE on public_port makes two forwards of one port impossible, across tenants.
CREATE TABLE port_forwards (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    vm_id       TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    public_port INTEGER NOT NULL UNIQUE,
    target_port INTEGER NOT NULL,
    protocol    TEXT NOT NULL DEFAULT 'tcp',
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX port_forwards_tenant ON port_forwards (tenant_id, public_port);
CREATE INDEX port_forwards_vm ON port_forwards (vm_id);

-- The routing table's version, polled by forwarders. Changes to forwards and
-- exposure bump it in their own transaction; vm_mark fingerprints the VM rows
-- (count and newest updated_at) so state and address changes made by the
-- lifecycle bump it too, when the next poll notices.
CREATE TABLE forward_routes (
    id         INTEGER PRIMARY KEY,
    version    BIGINT NOT NULL,
    vm_mark    TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO forward_routes (id, version, vm_mark, updated_at) VALUES (1, 1, '', CURRENT_TIMESTAMP);

-- +goose Down
DROP TABLE forward_routes;
DROP INDEX port_forwards_vm;
DROP INDEX port_forwards_tenant;
DROP TABLE port_forwards;
ALTER TABLE vms DROP COLUMN proxy_protocol;
ALTER TABLE vms DROP COLUMN expose_https;
ALTER TABLE vms DROP COLUMN expose_http;
