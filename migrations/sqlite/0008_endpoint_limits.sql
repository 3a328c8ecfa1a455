-- Per-endpoint limits chosen at creation: `max_connections` (live
-- connections at once; NULL: only the socket quotas) and `single_use` (the
-- code works for one connection: `used_at` is set when it is claimed).
ALTER TABLE endpoints ADD COLUMN max_connections BIGINT;
ALTER TABLE endpoints ADD COLUMN single_use BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE endpoints ADD COLUMN used_at BIGINT;
