-- The latest attempt's response status and duration, kept on the delivery by the record that
-- logs the attempt (issue 17: the deliveries list shows them). Attempts are not indexed by
-- delivery, so finding the latest one per listed row would walk the hook's attempt log.
-- NULL before the first attempt, and for deliveries recorded before this version.
ALTER TABLE deliveries ADD COLUMN last_status integer, ADD COLUMN last_duration_ms bigint;
