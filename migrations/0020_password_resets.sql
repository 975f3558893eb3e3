-- +goose Up
-- Password resets by one-time link. A row with a token hash is a link
-- (sent by email, or made by staff and handed over); a row without one is
-- a customer's request waiting for staff, when the portal sends no email.
-- Only hashes of the links' tokens are kept.
CREATE TABLE password_resets (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT UNIQUE,
    source_ip  TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX password_resets_user ON password_resets (user_id);
CREATE INDEX password_resets_open ON password_resets (expires_at) WHERE used_at IS NULL;

-- +goose Down
DROP TABLE password_resets;
