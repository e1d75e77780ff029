-- Per-user ordering (issue 15; see storage/ordering.rs): the user a delivery's line is
-- keyed by (NULL unless its hook orders per user and the event is about one user), and the
-- user an event is about (for replays).
ALTER TABLE deliveries ADD COLUMN ordering_key text;
ALTER TABLE events ADD COLUMN user_id text;

-- A line's queued rows in order: whether a line has a queued row, its head, its oldest held
-- row. Only rows that have a key enter it, and only while queued.
CREATE INDEX deliveries_lines ON deliveries (hook_id, ordering_key, due_at, seq)
    WHERE state = 0 AND ordering_key IS NOT NULL;

-- How many deliveries of each line are queued: the row that nodes enqueueing to, and
-- recording for, one line take turns on (storage/postgres/ordering.rs). A line's row goes when
-- its count reaches 0.
CREATE TABLE delivery_lines (
    hook_id      text NOT NULL,
    ordering_key text NOT NULL,
    queued       integer NOT NULL,
    PRIMARY KEY (hook_id, ordering_key)
);

-- Until when the hook's endpoint asked for a pause (a 429 or 503 with Retry-After; epoch
-- ms): deliveries enqueued for it meanwhile are due then (Store::pause_hook).
ALTER TABLE hooks ADD COLUMN paused_until bigint;
