-- Usage per app (SPEC "Usage"): each node adds what it counted since its
-- last write to the rows of the minute, the hour and the UTC day it was
-- counted in, keyed by the node's own id so nodes never write the same
-- row; a read sums the nodes. `period_start` is milliseconds since the
-- epoch; `connections_peak` is the node's most connections open at once.
CREATE TABLE app_usage (
    app_id BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    granularity TEXT NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
    period_start BIGINT NOT NULL,
    node TEXT NOT NULL,
    connections_peak BIGINT NOT NULL DEFAULT 0,
    messages_in BIGINT NOT NULL DEFAULT 0,
    messages_out BIGINT NOT NULL DEFAULT 0,
    bytes_in BIGINT NOT NULL DEFAULT 0,
    bytes_out BIGINT NOT NULL DEFAULT 0,
    signals BIGINT NOT NULL DEFAULT 0,
    webhook_deliveries BIGINT NOT NULL DEFAULT 0,
    refused_quota BIGINT NOT NULL DEFAULT 0,
    refused_rate BIGINT NOT NULL DEFAULT 0,
    refused_depth BIGINT NOT NULL DEFAULT 0,
    refused_credentials BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, granularity, period_start, node)
);
-- Pruning by age and the admin area's busiest apps read by period.
CREATE INDEX app_usage_period ON app_usage (granularity, period_start);
