-- +goose Up
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE quota_defaults (
    id            INTEGER PRIMARY KEY,
    instances     BIGINT NOT NULL,
    vcpus         BIGINT NOT NULL,
    memory_mib    BIGINT NOT NULL,
    disk_gib      BIGINT NOT NULL,
    ssh_keys      BIGINT NOT NULL,
    port_forwards BIGINT NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
INSERT INTO quota_defaults (id, instances, vcpus, memory_mib, disk_gib, ssh_keys, port_forwards, updated_at)
VALUES (1, 5, 8, 16384, 200, 10, 5, CURRENT_TIMESTAMP);

CREATE TABLE tenants (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    slug                TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL DEFAULT 'active',
    suspend_reason      TEXT NOT NULL DEFAULT '',
    quota_instances     BIGINT NOT NULL,
    quota_vcpus         BIGINT NOT NULL,
    quota_memory_mib    BIGINT NOT NULL,
    quota_disk_gib      BIGINT NOT NULL,
    quota_ssh_keys      BIGINT NOT NULL,
    quota_port_forwards BIGINT NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    tenant_id     TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP
);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP
);
CREATE INDEX invitations_tenant ON invitations (tenant_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE ssh_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    bits        INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, fingerprint)
);

CREATE TABLE plans (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    vcpus      BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    disk_gib   BIGINT NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO plans (id, name, vcpus, memory_mib, disk_gib, enabled, created_at, updated_at) VALUES
    ('plan-nano',   'nano',   1, 512,  10, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('plan-small',  'small',  1, 2048, 20, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('plan-medium', 'medium', 2, 4096, 40, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('plan-large',  'large',  4, 8192, 80, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);

CREATE TABLE images (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    os         TEXT NOT NULL,
    version    TEXT NOT NULL,
    source_url TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE vms (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    plan_id       TEXT NOT NULL REFERENCES plans(id),
    image_id      TEXT NOT NULL REFERENCES images(id),
    vcpus         BIGINT NOT NULL,
    memory_mib    BIGINT NOT NULL,
    disk_gib      BIGINT NOT NULL,
    state         TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    user_data     TEXT NOT NULL DEFAULT '',
    ip            TEXT NOT NULL DEFAULT '',
    last_error    TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    deleted_at    TIMESTAMP
);
CREATE UNIQUE INDEX vms_tenant_name ON vms (tenant_id, name) WHERE deleted_at IS NULL;
CREATE INDEX vms_state ON vms (state);

CREATE TABLE vm_ssh_keys (
    vm_id      TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    ssh_key_id TEXT NOT NULL REFERENCES ssh_keys(id) ON DELETE CASCADE,
    PRIMARY KEY (vm_id, ssh_key_id)
);

CREATE TABLE vm_steps (
    id          TEXT PRIMARY KEY,
    vm_id       TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    step        TEXT NOT NULL,
    state       TEXT NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX vm_steps_vm ON vm_steps (vm_id, started_at);

CREATE TABLE operations (
    id           TEXT PRIMARY KEY,
    vm_id        TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    state        TEXT NOT NULL,
    message      TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP
);
CREATE INDEX operations_vm ON operations (vm_id, created_at);
CREATE INDEX operations_state ON operations (state, created_at);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    at          TIMESTAMP NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    actor_email TEXT NOT NULL DEFAULT '',
    tenant_id   TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    source_ip   TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE operations;
DROP TABLE vm_steps;
DROP TABLE vm_ssh_keys;
DROP TABLE vms;
DROP TABLE images;
DROP TABLE plans;
DROP TABLE ssh_keys;
DROP TABLE api_tokens;
DROP TABLE invitations;
DROP TABLE users;
DROP TABLE tenants;
DROP TABLE quota_defaults;
DROP TABLE settings;
