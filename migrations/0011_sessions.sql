-- +goose Up
-- Signed-in sessions live on the server as well as in the signed cookie or
-- token, so that logging out, signing out everywhere and suspension end
-- them at once.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);

-- Organisation names are unique regardless of case; older duplicates keep
-- their name with the slug added.
UPDATE tenants SET name = name || ' (' || slug || ')'
WHERE id NOT IN (SELECT MIN(id) FROM tenants GROUP BY LOWER(name));
CREATE UNIQUE INDEX tenants_name_ci ON tenants (LOWER(name));

-- +goose Down
DROP INDEX tenants_name_ci;
DROP TABLE sessions;
