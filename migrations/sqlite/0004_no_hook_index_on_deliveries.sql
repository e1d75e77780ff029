-- The (hook_id) index on deliveries served only hook deletion, and cost every new delivery an
-- insert at a scattered place (one leaf page per subscribed hook dirtied per commit). Deleting a
-- hook now deletes its queued deliveries through the queue index, which carries hook_id; its
-- finished deliveries (ids, states and times; the payload is the event's) stay behind like the
-- events themselves, reachable by nothing.
DROP INDEX deliveries_hook;
