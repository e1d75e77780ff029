-- Deliveries as objects (GET /api/deliveries): finished deliveries by time, by hook and by
-- event. Partial (finished rows only), so a delivery enters them once, when its result is
-- recorded, and the queue's own writes (enqueue, claim, retry) never touch them; queued rows
-- are found through the queue index. See storage/deliveries.rs.
CREATE INDEX deliveries_finished_time ON deliveries (created_at) WHERE state <> 0;
CREATE INDEX deliveries_finished_hook ON deliveries (hook_id, created_at) WHERE state <> 0;
CREATE INDEX deliveries_finished_event ON deliveries (event_id) WHERE state <> 0;
