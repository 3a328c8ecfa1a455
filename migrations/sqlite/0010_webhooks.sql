-- Webhooks (SPEC "Webhooks"). `events` holds the event types it receives
-- as `,room.created,member.left,` so one LIKE finds the webhooks of an
-- event. The secret is kept as issued: deliveries are signed with it.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    app_id INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_app ON webhooks (app_id);

-- The outbox: one row per event and webhook, written in the transaction of
-- the change that causes the event. A node leases a due row
-- (`lease_until`) before attempting it, so one node at a time attempts a
-- delivery; `state` is 'pending', 'delivered' or 'failed'. Retries stop a
-- retry period after `series_started_at` (the event, or a "send again").
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    app_id BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    series_started_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_status BIGINT,
    last_error TEXT,
    finished_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_of_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_of_app ON webhook_deliveries (app_id, state, next_attempt_at);

-- `endpoint.expired` is sent once per expiry, by whichever node marks it
-- announced first; changing `expires_at` clears the mark.
ALTER TABLE endpoints ADD COLUMN expiry_announced BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX endpoints_expiring ON endpoints (expires_at) WHERE expires_at IS NOT NULL AND NOT expiry_announced;
