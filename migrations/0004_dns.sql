-- +goose Up
-- Extra records tenants keep in their own subzone (<tenant-slug>.<region zone>);
-- name is relative to that subzone, "@" for the subzone itself.
CREATE TABLE dns_records (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    type       TEXT NOT NULL,
    value      TEXT NOT NULL,
    ttl        INTEGER NOT NULL,
    priority   INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name, type, value)
);
CREATE INDEX dns_records_tenant ON dns_records (tenant_id, created_at);

-- The region zone's SOA serial. Record changes bump it in their own
-- transaction (and clear content_hash); changes made elsewhere (VM addresses)
-- are found by comparing the published content's hash.
CREATE TABLE dns_zone (
    id           INTEGER PRIMARY KEY,
    serial       BIGINT NOT NULL,
    content_hash TEXT NOT NULL DEFAULT '',
    updated_at   TIMESTAMP NOT NULL
);
INSERT INTO dns_zone (id, serial, content_hash, updated_at) VALUES (1, 1, '', CURRENT_TIMESTAMP);

-- +goose Down
DROP TABLE dns_zone;
DROP TABLE dns_records;
