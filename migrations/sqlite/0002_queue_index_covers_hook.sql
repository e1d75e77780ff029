-- The queue index also carries hook_id, so that a claim decides which rows to take (hook
-- enabled, not busy, under its per-hook cap) from the index alone, without reading each
-- scanned row from the table.
DROP INDEX deliveries_queued_due;
CREATE INDEX deliveries_queued_due ON deliveries (due_at, hook_id) WHERE state = 0;
