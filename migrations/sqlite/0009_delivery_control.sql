-- Per-user ordering (issue 15; see storage/ordering.rs): the user a delivery's line is
-- keyed by (NULL unless its hook orders per user and the event is about one user), and the
-- user an event is about (for replays).
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE events ADD COLUMN user_id TEXT;

-- A line's queued rows in order: whether a line has a queued row, its head, its oldest held
-- row. Only rows that have a key enter it, and only while queued.
CREATE INDEX deliveries_lines ON deliveries (hook_id, ordering_key, due_at)
    WHERE state = 0 AND ordering_key IS NOT NULL;
