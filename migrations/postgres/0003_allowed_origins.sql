-- Per-app allow-lists of browser origins (`comms_core::origins`): normalized
-- origins separated by single spaces; empty allows every origin. Adding a
-- column with a constant default rewrites no rows, so this is safe to apply
-- while nodes of the previous release are serving.
ALTER TABLE apps ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
