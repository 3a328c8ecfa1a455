-- The outbox's indexes, each holding only the rows its queries look for.
-- A delivery that succeeds at its first attempt (nearly all of them) now
-- enters two indexes when written, and leaves one and enters another when
-- finished; before, it entered three and moved within two of them.
--
-- Pending deliveries by app and due time: what leases read.
DROP INDEX webhook_deliveries_of_app;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (app_id, next_attempt_at) WHERE state = 'pending';
-- Failed and retrying deliveries by webhook: what the admin's list of
-- failing webhooks reads, in place of every row by state.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_failing ON webhook_deliveries (webhook_id)
    WHERE state = 'failed' OR (state = 'pending' AND attempts > 0);
-- Finished deliveries by the time they ended, for the prune: before this
-- index every prune scanned the whole outbox, bodies included, while
-- holding the writer.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE state <> 'pending';
