-- hookline's SQLite schema. Times are epoch milliseconds (INTEGER); JSON is stored as TEXT.

-- Small key/value settings, e.g. the hash of the generated admin token.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE hooks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    event       TEXT,              -- Logto's legacy single event, or NULL
    events      TEXT NOT NULL,     -- JSON array of event names
    config      TEXT NOT NULL,     -- JSON {url, headers?, retries?}
    signing_key TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Every published event, as published (without hookId). A delivery's body is this payload
-- with its hookId spliced in (domain::payload::delivery_body), so it is stored once per event,
-- not once per hook, and queue rows stay narrow: claims and results rewrite only small rows.
CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- One row per (event, subscribed hook). `id` doubles as the Standard Webhooks `webhook-id`.
-- state: 0 queued, 1 succeeded, 2 failed (schedule used up).
-- due_at: for a queued delivery, when it may next be claimed. Claiming moves it forward by the
-- lease, so a delivery whose worker died becomes due again when the lease runs out: there is
-- no separate "in flight" state to clean up after a crash.
CREATE TABLE deliveries (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    hook_id    TEXT NOT NULL,
    event_name TEXT NOT NULL,
    state      INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- The claim query walks queued rows in due order; finished rows stay out of this index.
CREATE INDEX deliveries_queued_due ON deliveries (due_at) WHERE state = 0;
CREATE INDEX deliveries_hook ON deliveries (hook_id);

-- Every HTTP attempt of every delivery.
CREATE TABLE attempts (
    id              TEXT PRIMARY KEY,
    delivery_id     TEXT NOT NULL,
    hook_id         TEXT NOT NULL,
    event_name      TEXT NOT NULL,
    attempt         INTEGER NOT NULL,  -- 1 for the first try
    success         INTEGER NOT NULL,
    response_status INTEGER,
    response_body   TEXT,              -- at most 20 KB
    error           TEXT,
    duration_ms     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX attempts_hook_time ON attempts (hook_id, created_at);
