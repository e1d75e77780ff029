-- Attempt ids are never looked up (the log is read by hook and time), so they need no unique
-- index of their own: one b-tree fewer to write per attempt. The table is rebuilt because
-- SQLite cannot drop a PRIMARY KEY.
CREATE TABLE attempts_new (
    id              TEXT NOT NULL,
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
INSERT INTO attempts_new (id, delivery_id, hook_id, event_name, attempt, success, response_status,
    response_body, error, duration_ms, created_at)
SELECT id, delivery_id, hook_id, event_name, attempt, success, response_status, response_body,
    error, duration_ms, created_at FROM attempts ORDER BY rowid;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_hook_time ON attempts (hook_id, created_at);
