-- Operating deliveries (issue 15).
--
-- Lookups for GET /api/deliveries, recover and replay: finished deliveries by time, by hook
-- and by event. Partial (finished rows only): every update of a row writes a new entry into
-- each index that covers it, and claims update queued rows, so these cost one entry per
-- delivery, when its result is recorded. Queued rows are found through the queue index. See
-- storage/deliveries.rs.
CREATE INDEX deliveries_finished_time ON deliveries (created_at, seq) WHERE state <> 0;
CREATE INDEX deliveries_finished_hook ON deliveries (hook_id, created_at, seq) WHERE state <> 0;
CREATE INDEX deliveries_finished_event ON deliveries (event_id) WHERE state <> 0;

-- Events by time, for replay windows and retention (events are never updated).
CREATE INDEX events_time ON events (created_at, id);

-- Attempts made before the current retry schedule began: a retry or a recovery starts the
-- schedule afresh while attempt numbers go on.
ALTER TABLE deliveries ADD COLUMN schedule_start integer NOT NULL DEFAULT 0;

-- Signing-key rotation with overlap: the key before the last rotation, and until when
-- deliveries are signed with it too (epoch ms). Both NULL outside a grace period.
ALTER TABLE hooks ADD COLUMN previous_signing_key text, ADD COLUMN previous_key_expires_at bigint;

-- Auto-disable: since when every attempt of the hook has failed (epoch ms; NULL once one
-- succeeds), and why hookline disabled it (NULL when it did not).
ALTER TABLE hooks ADD COLUMN failing_since bigint, ADD COLUMN disabled_reason text;
