-- Per-app quota overrides set by an admin (`comms_core::quotas`): a JSON
-- object from quota key to count, e.g. {"rooms_per_app": 50}; keys absent
-- keep the configured default. A constant default rewrites no rows, so this
-- is safe to apply while nodes of the previous release are serving.
ALTER TABLE apps ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}';
