-- Apps, their API keys, rooms, endpoints and retained message history: the
-- same schema as migrations/sqlite, in PostgreSQL types.
-- Times are milliseconds since the Unix epoch (UTC), as BIGINT.
-- Identity columns never hand out an id twice, even after a delete: the
-- in-memory hub and broker key rooms by id.

CREATE TABLE apps (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    status     TEXT   NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'suspended')),
    -- The portal account that owns the app; NULL for apps made with the CLI.
    owner_id   BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id     BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    -- Lower-case hex SHA-256 of the key; the key itself is never stored.
    key_hash   TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE rooms (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id       BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Highest seq stored, kept even when history ages out, so seq never
    -- goes back after a restart. Only ever raised (GREATEST): several nodes
    -- may write one room's messages.
    last_seq     BIGINT NOT NULL DEFAULT 0,
    -- Seqs are handed out in blocks reserved here before use; after a crash
    -- numbering resumes above the block, so a seq is never used twice.
    -- A clean shutdown lowers it back to last_seq.
    reserved_seq BIGINT NOT NULL DEFAULT 0,
    UNIQUE (app_id, name)
);

CREATE TABLE endpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id  TEXT   NOT NULL UNIQUE,
    code       TEXT   NOT NULL UNIQUE,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    permission TEXT   NOT NULL CHECK (permission IN ('read', 'read_and_write')),
    -- JSON object text (TEXT, not JSONB: kept exactly as given).
    meta       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX endpoints_room ON endpoints (room_id);

CREATE TABLE messages (
    room_id     BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    id          TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    sender_id   TEXT   NOT NULL,
    -- JSON object text.
    sender_meta TEXT   NOT NULL,
    -- JSON text exactly as the sender gave it (TEXT, not JSONB, which
    -- would reorder keys and drop whitespace).
    payload     TEXT   NOT NULL,
    PRIMARY KEY (room_id, seq)
);
CREATE INDEX messages_created ON messages (created_at);
