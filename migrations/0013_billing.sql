-- +goose Up
-- The storefront: one row of billing settings for the ISP, versioned
-- prices, and the usage that VM and port-forward lifecycle events record.

CREATE TABLE billing_settings (
    id                  INTEGER PRIMARY KEY,
    currency            TEXT NOT NULL,
    vat_bp              INTEGER NOT NULL,   -- VAT in basis points: 2100 is 21.00 %
    updated_at          TIMESTAMP NOT NULL
);
INSERT INTO billing_settings (id, currency, vat_bp, updated_at) VALUES (1, 'EUR', 0, CURRENT_TIMESTAMP);

-- A price applies from effective_from until the next version of the same
-- item; versions are only ever added, so past usage keeps its price.
CREATE TABLE prices (
    id                TEXT PRIMARY KEY,
    item              TEXT NOT NULL,        -- 'plan:<plan id>' or 'port_forward'
    hourly_micros     BIGINT NOT NULL,      -- per started hour, in millionths of the currency unit
    monthly_cap_minor BIGINT NOT NULL,      -- at most this per resource and month, in cents
    bill_stopped      BOOLEAN NOT NULL,     -- whether a stopped VM keeps billing
    effective_from    TIMESTAMP NOT NULL,
    created_by        TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX prices_version ON prices (item, effective_from);

-- One row per stretch of a resource's life in one billing class; the open
-- one (ended_at NULL) is closed in the same transaction as the lifecycle
-- change that ends it.
CREATE TABLE usage_records (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    resource_kind TEXT NOT NULL,            -- 'vm' | 'port_forward'
    resource_id   TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    item          TEXT NOT NULL,            -- the price item it bills under
    class         TEXT NOT NULL,            -- 'running' | 'stopped' | 'active'
    started_at    TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP
);
CREATE UNIQUE INDEX usage_records_open ON usage_records (resource_kind, resource_id) WHERE ended_at IS NULL;
CREATE INDEX usage_records_tenant ON usage_records (tenant_id, started_at);
CREATE INDEX usage_records_span ON usage_records (started_at, ended_at);

-- Hours and amounts per resource, month and price version, recomputed from
-- usage_records (so recomputing is idempotent).
CREATE TABLE usage_totals (
    month         TEXT NOT NULL,            -- '2026-12', UTC
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    price_id      TEXT NOT NULL,            -- '' when the item had no price
    tenant_id     TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    item          TEXT NOT NULL,
    hours         BIGINT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    metered_until TIMESTAMP NOT NULL,
    PRIMARY KEY (month, resource_kind, resource_id, item, price_id)
);
CREATE INDEX usage_totals_tenant ON usage_totals (tenant_id, month);

-- +goose Down
DROP TABLE usage_totals;
DROP TABLE usage_records;
DROP TABLE prices;
DROP TABLE billing_settings;
