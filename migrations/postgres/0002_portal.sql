-- The developer portal and admin area: accounts, what developers say about
-- their apps, and the audit log of admin actions and key issuance.
-- Portal sessions live in the `tower_sessions.session` table, which the
-- session store creates itself.

CREATE TABLE accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored lower-case; unique.
    email         TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string.
    password_hash TEXT    NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

ALTER TABLE apps ADD COLUMN description  TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN website      TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN intended_use TEXT NOT NULL DEFAULT '';
CREATE INDEX apps_owner ON apps (owner_id);

CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    -- The account's email, or `cli` for the command line.
    actor    TEXT   NOT NULL,
    -- requested, approved, rejected, suspended, reinstated, key_issued,
    -- keys_revoked, deleted.
    action   TEXT   NOT NULL,
    -- Kept by name: the log outlives deleted apps.
    app_name TEXT   NOT NULL,
    detail   TEXT   NOT NULL DEFAULT ''
);
