-- The (hook_id) index on queued deliveries served only hook deletion, and cost every
-- delivery two more index entries: one when it is enqueued and one when a claim moves its
-- due_at (a claim's UPDATE changes an indexed column, so it writes a new entry in every
-- index). Deleting a hook now finds its queued deliveries through the queue index, a scan of
-- the queued rows: a rare administrative step pays instead of every delivery. As on SQLite
-- (migrations/sqlite/0004_no_hook_index_on_deliveries.sql).
DROP INDEX deliveries_queued_hook;
