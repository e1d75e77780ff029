-- Transforms (issue 16): what a delivery's transform made of it, stored at its first
-- attempt so that every retry sends the same bytes. NULL until then, and for hooks without
-- a transform (their body is the event's payload with hookId, domain::payload::delivery_body).
ALTER TABLE deliveries ADD COLUMN request_body TEXT;
-- The custom headers the transform chose (a JSON object), NULL for the hook's own.
ALTER TABLE deliveries ADD COLUMN request_headers TEXT;

-- 3 is a new delivery state: skipped (its transform answered null). Like 1 and 2 it is
-- finished (state <> 0), so the finished indexes take it as they are.

-- The script run behind an attempt, if any (a transform, or a script blocking hook's
-- answer): {durationMs, logs, skipped?} or {durationMs, logs, answer?} as JSON.
ALTER TABLE attempts ADD COLUMN script TEXT;
