-- Operating deliveries (issue 15).
--
-- Lookups for GET /api/deliveries, recover and replay: finished deliveries by time and by
-- hook, partial (finished rows only), so a delivery enters them once, when its result is
-- recorded, and the queue's own writes (enqueue, claim, retry) never touch them; queued rows
-- are found through the queue index. Deliveries by event cover every row: SQLite updates an
-- index only when a column it holds changes, and event_id never does, so this costs one
-- entry per delivery either way. See storage/deliveries.rs.
CREATE INDEX deliveries_finished_time ON deliveries (created_at) WHERE state <> 0;
CREATE INDEX deliveries_finished_hook ON deliveries (hook_id, created_at) WHERE state <> 0;
CREATE INDEX deliveries_event ON deliveries (event_id);

-- Events by time, for replay windows and retention (one entry per event, not per delivery).
CREATE INDEX events_time ON events (created_at, id);

-- Attempts made before the current retry schedule began: a retry or a recovery starts the
-- schedule afresh while attempt numbers go on.
ALTER TABLE deliveries ADD COLUMN schedule_start INTEGER NOT NULL DEFAULT 0;

-- Signing-key rotation with overlap: the key before the last rotation, and until when
-- deliveries are signed with it too (epoch ms). Both NULL outside a grace period.
ALTER TABLE hooks ADD COLUMN previous_signing_key TEXT;
ALTER TABLE hooks ADD COLUMN previous_key_expires_at INTEGER;

-- Auto-disable: since when every attempt of the hook has failed (epoch ms; NULL once one
-- succeeds), and why hookline disabled it (NULL when it did not).
ALTER TABLE hooks ADD COLUMN failing_since INTEGER;
ALTER TABLE hooks ADD COLUMN disabled_reason TEXT;
