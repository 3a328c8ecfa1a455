-- Endpoints as living capabilities (SPEC "Endpoint lifecycle and
-- moderation"): a third permission, `moderate`; an expiry; a message budget
-- with its count; delegation (a child endpoint points at the endpoint that
-- minted it and goes with it; `depth` is its chain's length, 1 for
-- endpoints the app made); and a `revision` raised by every change, so a
-- node applies an endpoint's newest state only.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt (its
-- AUTOINCREMENT counter carried over, so no id is ever reused).
CREATE TABLE endpoints_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id       TEXT    NOT NULL UNIQUE,
    code            TEXT    NOT NULL UNIQUE,
    room_id         INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    permission      TEXT    NOT NULL CHECK (permission IN ('read', 'read_and_write', 'moderate')),
    -- JSON object text.
    meta            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    key_id          INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
    max_connections BIGINT,
    single_use      BOOLEAN NOT NULL DEFAULT FALSE,
    used_at         BIGINT,
    expires_at      BIGINT,
    max_messages    BIGINT,
    messages_sent   BIGINT  NOT NULL DEFAULT 0,
    can_delegate    BOOLEAN NOT NULL DEFAULT FALSE,
    parent_id       INTEGER REFERENCES endpoints (id) ON DELETE CASCADE,
    depth           BIGINT  NOT NULL DEFAULT 1,
    revision        BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO endpoints_new (id, public_id, code, room_id, permission, meta, created_at, key_id, max_connections,
                           single_use, used_at)
    SELECT id, public_id, code, room_id, permission, meta, created_at, key_id, max_connections, single_use, used_at
    FROM endpoints;
DELETE FROM sqlite_sequence WHERE name = 'endpoints_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'endpoints_new', seq FROM sqlite_sequence WHERE name = 'endpoints';
DROP TABLE endpoints;
ALTER TABLE endpoints_new RENAME TO endpoints;
CREATE INDEX endpoints_room ON endpoints (room_id);
CREATE INDEX endpoints_key ON endpoints (key_id);
CREATE INDEX endpoints_parent ON endpoints (parent_id);

-- Redacted messages keep their row with a `null` payload; children's
-- messages name their parent.
ALTER TABLE messages ADD COLUMN redacted_at BIGINT;
ALTER TABLE messages ADD COLUMN sender_parent TEXT;
