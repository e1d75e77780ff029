-- Applications, whose backends call the interaction API with their id and secret. The secret
-- is shown once, at creation; only its SHA-256 is kept (it is a long random string, so a
-- fast hash is enough: there is nothing to guess).
CREATE TABLE applications (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL DEFAULT '',
    doc         TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Short-lived interaction state, by space and key: failed sign-ins per identifier (lockout),
-- verification codes per recipient and their send counts (rate limit). A row past its
-- `expires_at` counts as absent.
CREATE TABLE interaction_state (
    space      TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (space, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX interaction_state_expiry ON interaction_state (expires_at);
