-- +goose Up
-- Sign-ups waiting for their email to be confirmed (when the portal sends
-- email): nothing is created until the link in the message is followed.
-- Only a hash of the link's token is kept.
CREATE TABLE signup_requests (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL,
    tenant_name   TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    source_ip     TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);
CREATE INDEX signup_requests_email ON signup_requests (email);
CREATE INDEX signup_requests_expires ON signup_requests (expires_at);

-- +goose Down
DROP TABLE signup_requests;
