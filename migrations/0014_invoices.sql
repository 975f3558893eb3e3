-- +goose Up
-- Invoices and credit notes (immutable once issued, numbered from one
-- sequence without gaps), payments and credits staff record, and each
-- tenant's credit limit.
ALTER TABLE billing_settings ADD COLUMN invoice_prefix TEXT NOT NULL DEFAULT 'FX';
ALTER TABLE billing_settings ADD COLUMN next_number BIGINT NOT NULL DEFAULT 1;
ALTER TABLE billing_settings ADD COLUMN default_credit_limit_minor BIGINT;
ALTER TABLE tenants ADD COLUMN credit_limit_minor BIGINT;

CREATE TABLE invoices (
    id                 TEXT PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,          -- 'invoice' | 'credit_note'
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    tenant_name        TEXT NOT NULL,
    month              TEXT NOT NULL,          -- the billed month, '2026-12'
    currency           TEXT NOT NULL,
    subtotal_minor     BIGINT NOT NULL,
    vat_bp             INTEGER NOT NULL,
    vat_minor          BIGINT NOT NULL,
    total_minor        BIGINT NOT NULL,
    credits_invoice_id TEXT REFERENCES invoices(id),
    reason             TEXT NOT NULL DEFAULT '',
    issued_at          TIMESTAMP NOT NULL,
    issued_by          TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX invoices_one_per_month ON invoices (tenant_id, month) WHERE kind = 'invoice';
CREATE INDEX invoices_tenant ON invoices (tenant_id, issued_at);

CREATE TABLE invoice_lines (
    id            TEXT PRIMARY KEY,
    invoice_id    TEXT NOT NULL REFERENCES invoices(id),
    position      INTEGER NOT NULL,
    description   TEXT NOT NULL,
    resource_kind TEXT NOT NULL DEFAULT '',
    resource_id   TEXT NOT NULL DEFAULT '',
    hours         BIGINT NOT NULL DEFAULT 0,
    unit_micros   BIGINT NOT NULL DEFAULT 0,
    amount_minor  BIGINT NOT NULL
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, position);

CREATE TABLE payments (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL,                -- 'payment' | 'credit'
    amount_minor BIGINT NOT NULL,
    reference    TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    recorded_by  TEXT NOT NULL DEFAULT '',
    recorded_at  TIMESTAMP NOT NULL
);
CREATE INDEX payments_tenant ON payments (tenant_id, recorded_at);

-- +goose Down
DROP TABLE payments;
DROP TABLE invoice_lines;
DROP TABLE invoices;
ALTER TABLE tenants DROP COLUMN credit_limit_minor;
ALTER TABLE billing_settings DROP COLUMN default_credit_limit_minor;
ALTER TABLE billing_settings DROP COLUMN next_number;
ALTER TABLE billing_settings DROP COLUMN invoice_prefix;
