-- Finished webhook deliveries by the time they ended, for the prune: before
-- this index every prune scanned the whole outbox, bodies included, while
-- holding the writer. Pending rows, the ones written and leased at the
-- event rate, are not in it.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE state <> 'pending';
