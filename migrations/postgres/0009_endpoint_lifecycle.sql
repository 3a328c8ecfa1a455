-- Endpoints as living capabilities (SPEC "Endpoint lifecycle and
-- moderation"): a third permission, `moderate`; an expiry, a message budget with its count, delegation (a
-- child endpoint points at the endpoint that minted it and goes with it;
-- `depth` is its chain's length, 1 for endpoints the app made), and a
-- `revision` raised by every change, so a node applies an endpoint's
-- newest state only.
ALTER TABLE endpoints DROP CONSTRAINT endpoints_permission_check;
ALTER TABLE endpoints ADD CONSTRAINT endpoints_permission_check
    CHECK (permission IN ('read', 'read_and_write', 'moderate'));
ALTER TABLE endpoints ADD COLUMN expires_at BIGINT;
ALTER TABLE endpoints ADD COLUMN max_messages BIGINT;
ALTER TABLE endpoints ADD COLUMN messages_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN can_delegate BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE endpoints ADD COLUMN parent_id BIGINT REFERENCES endpoints (id) ON DELETE CASCADE;
ALTER TABLE endpoints ADD COLUMN depth BIGINT NOT NULL DEFAULT 1;
ALTER TABLE endpoints ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX endpoints_parent ON endpoints (parent_id);
-- Redacted messages keep their row with a `null` payload; children's
-- messages name their parent.
ALTER TABLE messages ADD COLUMN redacted_at BIGINT;
ALTER TABLE messages ADD COLUMN sender_parent TEXT;
